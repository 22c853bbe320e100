"""Independent reference implementation of /work/shared/docs/PRICING_SPEC.md.

Written from the specification text only (not from the C code).  Standard
library only; every amount is a Python int (arbitrary precision, so the
spec's 128-bit intermediates are exact).

Entry point: price(case: dict) -> dict  (the section 8 output object, or
{"error": {"code": "BAD_INPUT", "message": ...}}).

Readings where the spec is silent (agreed with the C implementation so a
differential comparison is meaningful):
  * JSON null for a field means the field is absent; unknown fields are ignored.
  * `definitions` and `usage` may be absent (empty); `customer.id` and
    `customer.tier` are each optional.
  * line fields id, sku, category (strings), unit_price, quantity,
    tax_rate_ppm (ints) are required; stock, unit_cost optional ints 0..10^15.
  * definition fields code, status, type, value are required; the code must
    normalize to a valid code; duplicate normalized codes are BAD_INPUT.
  * usage keys are normalized; keys matching no definition are ignored; two
    keys normalizing to the same defined code are BAD_INPUT; total/customer
    are optional ints 0..10^15.
  * every integer field of a definition is an int 0..10^15 (percentage value
    and tier_values <= 10000); booleans are not ints; `combinable` must be a
    JSON boolean.
  * currency fields are exactly 3 ASCII upper-case letters; a definition's
    currency is required when type is fixed or min_spend/max_spend/
    max_discount is set.
  * timestamps: RFC 3339 (T/t, Z/z or +HH:MM/-HH:MM, optional 1..9 digit
    fraction, seconds 00..60 where 60 is the next minute's :00), compared as
    instants.
  * CUSTOMER_REQUIRED: the code has customer_id, tiers or per_customer_limit
    and the cart has no customer id, or the code has tiers and the cart has
    no tier.
  * tier_values uses the cart's tier (exact) whether or not `tiers` is set.
  * channel / sku / category / tier / customer id comparisons are exact.
  * when the chosen plan's total is 0 the tie-breaks still pick a plan and
    its zero-D codes are rejected NOTHING_TO_DISCOUNT.
"""

import re

MAX_VAL = 10 ** 15
MAX_PRICE = 10 ** 10
MAX_QTY = 10 ** 6
MAX_SUBTOTAL = 10 ** 15
MAX_PPM = 1000000
ASCII_WS = " \t\n\r\x0b\x0c"

CODE_RE = re.compile(r"[A-Z0-9_-]{3,64}\Z")
CURRENCY_RE = re.compile(r"[A-Z]{3}\Z")
TS_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))\Z"
)


class BadInput(Exception):
    pass


def bad(msg):
    raise BadInput(msg)


# ---------------------------------------------------------------- helpers

def div_round(n, d, mode):
    """Exact n/d (n >= 0, d > 0) rounded by mode half_up / half_even."""
    assert n >= 0 and d > 0
    q, r = divmod(n, d)
    twice = 2 * r
    if twice > d:
        return q + 1
    if twice == d:
        if mode == "half_up":
            return q + 1
        return q + (q & 1)
    return q


def normalize_code(s):
    s = s.strip(ASCII_WS)
    out = []
    for ch in s:
        if "a" <= ch <= "z":
            out.append(chr(ord(ch) - 32))
        else:
            out.append(ch)
    return "".join(out)


def valid_code(s):
    return CODE_RE.match(s) is not None and s.isascii()


def is_int(x):
    return type(x) is int


def is_str(x):
    return type(x) is str


def get(obj, key):
    """Field lookup where JSON null means absent."""
    v = obj.get(key)
    return v


def req_str(obj, key, where):
    v = get(obj, key)
    if v is None:
        bad("%s.%s missing" % (where, key))
    if not is_str(v):
        bad("%s.%s not a string" % (where, key))
    return v


def opt_str(obj, key, where):
    v = get(obj, key)
    if v is None:
        return None
    if not is_str(v):
        bad("%s.%s not a string" % (where, key))
    return v


def int_in(v, lo, hi, what):
    if not is_int(v):
        bad("%s not an integer" % what)
    if v < lo or v > hi:
        bad("%s out of range" % what)
    return v


def req_int(obj, key, lo, hi, where):
    v = get(obj, key)
    if v is None:
        bad("%s.%s missing" % (where, key))
    return int_in(v, lo, hi, "%s.%s" % (where, key))


def opt_int(obj, key, lo, hi, where):
    v = get(obj, key)
    if v is None:
        return None
    return int_in(v, lo, hi, "%s.%s" % (where, key))


def opt_str_list(obj, key, where):
    v = get(obj, key)
    if v is None:
        return None
    if type(v) is not list:
        bad("%s.%s not a list" % (where, key))
    for e in v:
        if not is_str(e):
            bad("%s.%s element not a string" % (where, key))
    return v


def check_currency(v, what):
    if not is_str(v) or not (CURRENCY_RE.match(v) and v.isascii()):
        bad("%s not a currency" % what)
    return v


_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


def _leap(y):
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def _days_from_civil(y, m, d):
    # days since 1970-01-01 (proleptic Gregorian)
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def parse_ts(v, what):
    """RFC 3339 -> instant as integer nanoseconds since the epoch."""
    if not is_str(v):
        bad("%s not a string" % what)
    m = TS_RE.match(v)
    if not m or not v.isascii():
        bad("%s not an RFC 3339 timestamp" % what)
    y, mo, d, hh, mi, ss = (int(m.group(i)) for i in range(1, 7))
    frac = m.group(7)
    if not (1 <= mo <= 12):
        bad("%s bad month" % what)
    dim = _DAYS[mo - 1] + (1 if mo == 2 and _leap(y) else 0)
    if not (1 <= d <= dim):
        bad("%s bad day" % what)
    if hh > 23 or mi > 59 or ss > 60:
        bad("%s bad time" % what)
    off = 0
    if m.group(8) is None:
        oh, om = int(m.group(10)), int(m.group(11))
        if oh > 23 or om > 59:
            bad("%s bad offset" % what)
        off = (oh * 60 + om) * 60
        if m.group(9) == "-":
            off = -off
    secs = _days_from_civil(y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss - off
    ns = int((frac or "").ljust(9, "0")) if frac else 0
    return secs * 1000000000 + ns


# ---------------------------------------------------------------- parsing

def parse_case(case):
    if type(case) is not dict:
        bad("case is not an object")
    c = {}
    if get(case, "currency") is None:
        bad("currency missing")
    c["currency"] = check_currency(get(case, "currency"), "currency")

    def enum(key, allowed, default):
        v = get(case, key)
        if v is None:
            return default
        if not is_str(v) or v not in allowed:
            bad("%s invalid" % key)
        return v

    c["tax_mode"] = enum("tax_mode", ("exclusive", "inclusive"), "exclusive")
    c["rounding"] = enum("rounding", ("half_up", "half_even"), "half_up")
    c["stacking"] = enum("stacking", ("best_only", "combine"), "best_only")
    if get(case, "now") is None:
        bad("now missing")
    c["now"] = parse_ts(get(case, "now"), "now")
    c["channel"] = opt_str(case, "channel", "case")

    cust = get(case, "customer")
    c["customer_id"] = None
    c["tier"] = None
    if cust is not None:
        if type(cust) is not dict:
            bad("customer not an object")
        c["customer_id"] = opt_str(cust, "id", "customer")
        c["tier"] = opt_str(cust, "tier", "customer")

    lines = get(case, "lines")
    if lines is None:
        bad("lines missing")
    if type(lines) is not list:
        bad("lines not a list")
    if not (1 <= len(lines) <= 1000):
        bad("lines count out of range")
    pl = []
    for i, ln in enumerate(lines):
        w = "lines[%d]" % i
        if type(ln) is not dict:
            bad("%s not an object" % w)
        L = {
            "id": req_str(ln, "id", w),
            "sku": req_str(ln, "sku", w),
            "category": req_str(ln, "category", w),
            "unit_price": req_int(ln, "unit_price", 0, MAX_PRICE, w),
            "quantity": req_int(ln, "quantity", 1, MAX_QTY, w),
            "tax_rate_ppm": req_int(ln, "tax_rate_ppm", 0, MAX_PPM, w),
            "stock": opt_int(ln, "stock", 0, MAX_VAL, w),
            "unit_cost": opt_int(ln, "unit_cost", 0, MAX_VAL, w),
        }
        pl.append(L)
    c["lines"] = pl
    S = sum(L["unit_price"] * L["quantity"] for L in pl)
    if S > MAX_SUBTOTAL:
        bad("subtotal out of range")
    c["S"] = S

    codes = get(case, "codes")
    if codes is None:
        bad("codes missing")
    if type(codes) is not list:
        bad("codes not a list")
    if not (1 <= len(codes) <= 20):
        bad("codes count out of range")
    for x in codes:
        if not is_str(x):
            bad("code not a string")
    c["codes"] = codes

    defs = get(case, "definitions")
    dmap = {}
    if defs is not None:
        if type(defs) is not list:
            bad("definitions not a list")
        for i, d in enumerate(defs):
            pd = parse_def(d, "definitions[%d]" % i)
            if pd["code"] in dmap:
                bad("duplicate definition code")
            dmap[pd["code"]] = pd
    c["defs"] = dmap

    usage = get(case, "usage")
    umap = {}
    if usage is not None:
        if type(usage) is not dict:
            bad("usage not an object")
        for k, u in usage.items():
            w = "usage[%s]" % k
            nk = normalize_code(k)
            # a usage entry is a map value, not an optional field: it must
            # be an object (null is not read as "absent" here)
            if type(u) is not dict:
                bad("%s not an object" % w)
            tot = opt_int(u, "total", 0, MAX_VAL, w) or 0
            cus = opt_int(u, "customer", 0, MAX_VAL, w) or 0
            if nk not in dmap:
                continue
            if nk in umap:
                bad("duplicate usage key")
            umap[nk] = (tot, cus)
    c["usage"] = umap
    return c


def parse_def(d, w):
    if type(d) is not dict:
        bad("%s not an object" % w)
    D = {}
    code = normalize_code(req_str(d, "code", w))
    if not valid_code(code):
        bad("%s.code invalid" % w)
    D["code"] = code
    st = req_str(d, "status", w)
    if st not in ("active", "paused", "archived"):
        bad("%s.status invalid" % w)
    D["status"] = st
    ty = req_str(d, "type", w)
    if ty not in ("percentage", "fixed"):
        bad("%s.type invalid" % w)
    D["type"] = ty
    vmax = 10000 if ty == "percentage" else MAX_VAL
    D["value"] = req_int(d, "value", 0, vmax, w)
    cur = get(d, "currency")
    D["currency"] = None if cur is None else check_currency(cur, w + ".currency")
    for k in ("min_spend", "max_spend", "max_discount", "usage_limit",
              "per_customer_limit", "priority"):
        D[k] = opt_int(d, k, 0, MAX_VAL, w)
    if D["priority"] is None:
        D["priority"] = 0
    if D["currency"] is None and (ty == "fixed" or D["min_spend"] is not None
                                  or D["max_spend"] is not None
                                  or D["max_discount"] is not None):
        bad("%s.currency required" % w)
    sa = get(d, "starts_at")
    D["starts_at"] = None if sa is None else parse_ts(sa, w + ".starts_at")
    ea = get(d, "expires_at")
    D["expires_at"] = None if ea is None else parse_ts(ea, w + ".expires_at")
    D["tiers"] = opt_str_list(d, "tiers", w)
    D["channels"] = opt_str_list(d, "channels", w)
    D["customer_id"] = opt_str(d, "customer_id", w)
    tv = get(d, "tier_values")
    if tv is not None:
        if type(tv) is not dict:
            bad("%s.tier_values not an object" % w)
        for k, v in tv.items():
            int_in(v, 0, vmax, "%s.tier_values[%s]" % (w, k))
    D["tier_values"] = tv
    cb = get(d, "combinable")
    if cb is None:
        cb = False
    elif type(cb) is not bool:
        bad("%s.combinable not a boolean" % w)
    D["combinable"] = cb
    tg = get(d, "targets")
    T = None
    if tg is not None:
        if type(tg) is not dict:
            bad("%s.targets not an object" % w)
        tw = w + ".targets"
        T = {
            "skus": opt_str_list(tg, "skus", tw),
            "categories": opt_str_list(tg, "categories", tw),
            "exclude_skus": opt_str_list(tg, "exclude_skus", tw),
            "exclude_categories": opt_str_list(tg, "exclude_categories", tw),
            "low_stock_max": opt_int(tg, "low_stock_max", 0, MAX_VAL, tw),
            "max_margin_bp": opt_int(tg, "max_margin_bp", 0, MAX_VAL, tw),
        }
    D["targets"] = T
    return D


# ---------------------------------------------------------------- pricing

def targeted(D, L):
    T = D["targets"]
    if T is None:
        return True
    if T["skus"] is not None and L["sku"] not in T["skus"]:
        return False
    if T["categories"] is not None and L["category"] not in T["categories"]:
        return False
    if T["exclude_skus"] is not None and L["sku"] in T["exclude_skus"]:
        return False
    if T["exclude_categories"] is not None and \
            L["category"] in T["exclude_categories"]:
        return False
    if T["low_stock_max"] is not None:
        if L["stock"] is None or L["stock"] > T["low_stock_max"]:
            return False
    if T["max_margin_bp"] is not None:
        if L["unit_cost"] is None:
            return False
        up = L["unit_price"]
        if (up - L["unit_cost"]) * 10000 > T["max_margin_bp"] * up:
            return False
    return True


def available(L):
    return L["stock"] is None or L["quantity"] <= L["stock"]


def check_code(c, D, idxs_out):
    """Checks 4..17 for a known code; returns reason or None."""
    if D["status"] != "active":
        return "INACTIVE"
    now = c["now"]
    if D["starts_at"] is not None and now < D["starts_at"]:
        return "NOT_YET_VALID"
    if D["expires_at"] is not None and now >= D["expires_at"]:
        return "EXPIRED"
    if D["channels"] is not None and (c["channel"] is None
                                      or c["channel"] not in D["channels"]):
        return "CHANNEL_NOT_ALLOWED"
    cid, tier = c["customer_id"], c["tier"]
    if (D["customer_id"] is not None or D["tiers"] is not None
            or D["per_customer_limit"] is not None) and cid is None:
        return "CUSTOMER_REQUIRED"
    if D["tiers"] is not None and tier is None:
        return "CUSTOMER_REQUIRED"
    if D["customer_id"] is not None and D["customer_id"] != cid:
        return "CUSTOMER_NOT_ALLOWED"
    if D["tiers"] is not None and tier not in D["tiers"]:
        return "TIER_NOT_ELIGIBLE"
    ut, uc = c["usage"].get(D["code"], (0, 0))
    if D["usage_limit"] is not None and ut >= D["usage_limit"]:
        return "USAGE_LIMIT_REACHED"
    if D["per_customer_limit"] is not None and uc >= D["per_customer_limit"]:
        return "CUSTOMER_LIMIT_REACHED"
    if D["currency"] is not None and D["currency"] != c["currency"]:
        return "CURRENCY_MISMATCH"
    S = c["S"]
    if D["min_spend"] is not None and S < D["min_spend"]:
        return "MIN_SPEND_NOT_MET"
    if D["max_spend"] is not None and S > D["max_spend"]:
        return "MAX_SPEND_EXCEEDED"
    tg = [i for i, L in enumerate(c["lines"]) if targeted(D, L)]
    if not tg:
        return "NO_ELIGIBLE_ITEMS"
    el = [i for i in tg if available(c["lines"][i])]
    if not el:
        return "ITEM_UNAVAILABLE"
    idxs_out.extend(el)
    return None


def value_code(c, D, elig, amounts):
    """Section 5: returns (D, {line_index: share})."""
    E = sum(amounts[i] for i in elig)
    if E == 0:
        return 0, {}
    tv = D["tier_values"]
    tier = c["tier"]
    if tv is not None and tier is not None and tier in tv:
        v = tv[tier]
    else:
        v = D["value"]
    if D["type"] == "percentage":
        d = div_round(E * v, 10000, c["rounding"])
    else:
        d = v
    if D["max_discount"] is not None:
        d = min(d, D["max_discount"])
    d = min(d, E)
    shares = {}
    rems = []
    tot = 0
    for pos, i in enumerate(elig):
        q, r = divmod(d * amounts[i], E)
        shares[i] = q
        tot += q
        rems.append((-r, pos, i))
    R = d - tot
    if R:
        rems.sort()
        for k in range(R):
            shares[rems[k][2]] += 1
    return d, shares


def run_plan(c, plan, elig_of, base):
    amounts = list(base)
    res = []
    total = 0
    for code in plan:
        D = c["defs"][code]
        d, shares = value_code(c, D, elig_of[code], amounts)
        for i, s in shares.items():
            amounts[i] -= s
        res.append((code, d, shares))
        total += d
    return total, res, amounts


def compute(c):
    lines = c["lines"]
    base = [L["unit_price"] * L["quantity"] for L in lines]
    codes_norm = [normalize_code(x) for x in c["codes"]]
    reason = [None] * len(codes_norm)
    seen = set()
    passed = []  # normalized codes passing section 4 (in request order)
    elig_of = {}
    for k, code in enumerate(codes_norm):
        if not valid_code(code):
            reason[k] = "MALFORMED_CODE"
            continue
        if code in seen:
            reason[k] = "DUPLICATE_CODE"
            continue
        seen.add(code)
        D = c["defs"].get(code)
        if D is None:
            reason[k] = "UNKNOWN_CODE"
            continue
        el = []
        r = check_code(c, D, el)
        if r is not None:
            reason[k] = r
            continue
        passed.append(code)
        elig_of[code] = el

    V = sorted(passed, key=lambda x: (-c["defs"][x]["priority"], x))
    amounts = list(base)
    applied = []
    if V:
        if c["stacking"] == "best_only":
            cands = [[x] for x in V]
        else:
            cands = [[x] for x in V if not c["defs"][x]["combinable"]]
            comb = [x for x in V if c["defs"][x]["combinable"]]
            if comb:
                cands.append(comb)
        best = None
        for plan in cands:
            total, res, am = run_plan(c, plan, elig_of, base)
            key = (-total, len(plan), plan)
            if best is None or key < best[0]:
                best = (key, res, am)
        _, res, amounts = best
        in_plan = {}
        for code, d, shares in res:
            in_plan[code] = d
            if d > 0:
                allocs = [{"line_id": lines[i]["id"], "amount": shares[i]}
                          for i in sorted(shares) if shares[i] != 0]
                applied.append({"code": code, "amount": d,
                                "allocations": allocs})
        for k, code in enumerate(codes_norm):
            if reason[k] is None:
                if code not in in_plan:
                    reason[k] = "NOT_COMBINABLE"
                elif in_plan[code] == 0:
                    reason[k] = "NOTHING_TO_DISCOUNT"
    rejected = [{"code": codes_norm[k], "reason": reason[k]}
                for k in range(len(codes_norm)) if reason[k] is not None]

    mode = c["rounding"]

    def tax_of(a, r):
        if c["tax_mode"] == "exclusive":
            t = div_round(a * r, 1000000, mode)
            return a, t, a + t
        net = div_round(a * 1000000, 1000000 + r, mode)
        return net, a - net, a

    out_lines = []
    disc_total = tax_total = tax_before = grand = 0
    for i, L in enumerate(lines):
        a = amounts[i]
        d = base[i] - a
        net, tax, tot = tax_of(a, L["tax_rate_ppm"])
        tax_before += tax_of(base[i], L["tax_rate_ppm"])[1]
        disc_total += d
        tax_total += tax
        grand += tot
        out_lines.append({"id": L["id"], "subtotal": base[i], "discount": d,
                          "net": net, "tax": tax, "total": tot,
                          "available": available(L)})
    return {
        "currency": c["currency"],
        "subtotal": c["S"],
        "discount_total": disc_total,
        "tax_total": tax_total,
        "tax_total_before": tax_before,
        "grand_total": grand,
        "lines": out_lines,
        "applied": applied,
        "rejected": rejected,
    }


def price(case):
    try:
        c = parse_case(case)
    except BadInput as e:
        return {"error": {"code": "BAD_INPUT", "message": str(e)}}
    return compute(c)


if __name__ == "__main__":
    import json
    import sys
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            case = json.loads(line)
        except ValueError:
            print(json.dumps({"error": {"code": "BAD_INPUT",
                                        "message": "invalid JSON"}}))
            continue
        print(json.dumps(price(case), separators=(",", ":")))
