#!/usr/bin/env python3
"""Differential tester: promo-calc (C) versus pricing_ref.price (Python).

Generates random (and deliberately awkward or invalid) pricing cases, pipes
them through ONE promo-calc process, and compares every result with the
reference implementation.  For BAD_INPUT, only "both are errors" is compared.

Usage: difftest.py [--cases N] [--seed S] [--bin PATH] [--show K] [--dump FILE]
Ends with "difftest: <passed> passed, <failed> failed"; exit 1 on any mismatch.
"""

import argparse
import json
import os
import random
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pricing_ref  # noqa: E402

E9 = 10 ** 9
E15 = 10 ** 15
BASE_NOW = pricing_ref.parse_ts("2026-11-24T10:00:00Z", "now")

CODE_POOL = ["SAVE10", "VIP-7K2M", "FREE_SHIP", "AAA", "ZZZ", "B-2", "X9_",
             "BLACKFRIDAY", "SAVE5", "A1B", "GOLD-ONLY", "HALF", "Z" * 64,
             "W" * 3, "SUMMER_2026", "SAVE10X"]
UNKNOWN_POOL = ["NOPE", "UNKNOWN1", "SAVE11", "QQQ", "ABC-DEF"]
MALFORMED_POOL = ["ab", "", "   ", "A B C", "SAVE!", "X" * 65, "caf\u00e9",
                  "\u00a0SAVE10", "SAVE10\u00a0", "a", "SA", "stra\u00dfe",
                  "S.A.V.E", "\u0131ii", "--"]
SKUS = ["SKU-1", "SKU-2", "SKU-3", "sku-1", "SKU-4"]
CATS = ["shoes", "hats", "food", "Shoes", "toys"]
TIERS = ["gold", "silver", "bronze", "Gold"]
CHANNELS = ["web", "pos", "app", "Web"]
CUSTS = ["c-17", "c-18", "C-17", ""]
CURRENCIES = ["USD", "USD", "USD", "JPY", "KWD", "EUR"]
TAX_RATES = [0, 82500, 88750, 200000, 250000, 500000, 600000, 1000000,
             70000, 100000, 1]
WS = [" ", "\t", "\n", "\r", "  ", " \t"]
OFFSETS = [0, 0, 60, -300, -330, 330, 840, -720, 1439, -1439]


# ------------------------------------------------------------ timestamps

def civil_from_days(z):
    z += 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return y + (m <= 2), m, d


def fmt_ts(rng, ns):
    """A random RFC 3339 spelling of instant ns (nanoseconds)."""
    off = rng.choice(OFFSETS)
    local = ns + off * 60 * E9
    secs, sub = divmod(local, E9)
    use60 = (secs % 60 == 0) and rng.random() < 0.25
    if use60:
        secs -= 60
    days, sod = divmod(secs, 86400)
    y, m, d = civil_from_days(days)
    hh, rem = divmod(sod, 3600)
    mi, ss = divmod(rem, 60)
    if use60:
        ss = 60
    need = 0
    if sub:
        s9 = "%09d" % sub
        need = len(s9.rstrip("0"))
    digits = need
    if rng.random() < 0.3:
        digits = rng.randint(max(need, 1), 9)
    frac = ("." + ("%09d" % sub)[:digits]) if digits else ""
    t = "t" if rng.random() < 0.1 else "T"
    if off == 0 and rng.random() < 0.7:
        z = "z" if rng.random() < 0.1 else "Z"
    else:
        sign = "-" if off < 0 or (off == 0 and rng.random() < 0.5) else "+"
        z = "%s%02d:%02d" % (sign, abs(off) // 60, abs(off) % 60)
    return "%04d-%02d-%02d%s%02d:%02d:%02d%s%s" % (y, m, d, t, hh, mi, ss,
                                                  frac, z)


def near(rng, ns):
    return ns + rng.choice([0, 0, 0, 1, -1, E9, -E9, 3600 * E9,
                            -3600 * E9, 86400 * E9 * 400, -86400 * E9 * 30,
                            rng.randint(-10 ** 13, 10 ** 13)])


# ------------------------------------------------------------ codes

def spell(rng, code):
    """Random non-normalized spelling of a code."""
    out = []
    for ch in code:
        if "A" <= ch <= "Z" and rng.random() < 0.3:
            out.append(ch.lower())
        else:
            out.append(ch)
    s = "".join(out)
    if rng.random() < 0.2:
        s = rng.choice(WS) + s
    if rng.random() < 0.2:
        s = s + rng.choice(WS)
    if rng.random() < 0.03:
        s = "\x0b" + s + "\x0c"
    return s


def maybe_spell(rng, code):
    return spell(rng, code) if rng.random() < 0.35 else code


# ------------------------------------------------------------ lines

def gen_unit_price(rng, big):
    r = rng.random()
    if big:
        return rng.choice([10 ** 10, 10 ** 10 - 1, rng.randint(10 ** 9, 10 ** 10)])
    if r < 0.08:
        return 0
    if r < 0.3:
        return rng.randint(1, 20)
    if r < 0.8:
        return rng.randint(1, 20000)
    if r < 0.95:
        return rng.randint(1, 10 ** 7)
    return rng.randint(1, 10 ** 10)


def gen_lines(rng, n, big):
    lines = []
    for i in range(n):
        up = gen_unit_price(rng, big)
        if big:
            q = rng.randint(1, 10 ** 6)
        else:
            q = rng.choice([1, 1, 1, 2, 3, 5, 7, rng.randint(1, 100)])
            if rng.random() < 0.02:
                q = rng.randint(1, 10 ** 6)
        ln = {"id": "l%d" % (i + 1) if rng.random() < 0.97 else
              rng.choice(["l1", "x", "", "line\u00e9"]),
              "sku": rng.choice(SKUS), "category": rng.choice(CATS),
              "unit_price": up, "quantity": q,
              "tax_rate_ppm": rng.choice(TAX_RATES) if rng.random() < 0.9
              else rng.randint(0, 1000000)}
        r = rng.random()
        if r < 0.35:
            ln["stock"] = max(0, q + rng.choice([-1, 0, 1, 5, -q, 100]))
        elif r < 0.4:
            ln["stock"] = None
        r = rng.random()
        if r < 0.35:
            ln["unit_cost"] = max(0, up + rng.choice(
                [0, -1, 1, -(up // 2), -(up // 3), -(up // 10), up,
                 -up, rng.randint(-up, up)]))
        elif r < 0.38:
            ln["unit_cost"] = None
        lines.append(ln)
    return lines


def fit_subtotal(rng, lines):
    """Keep S <= 10^15 (mostly), sometimes just over."""
    S = sum(l["unit_price"] * l["quantity"] for l in lines)
    if S <= E15:
        return
    over = rng.random() < 0.1
    # shrink quantities until under the bound
    for l in lines:
        S = sum(x["unit_price"] * x["quantity"] for x in lines)
        if S <= E15:
            break
        excess = S - E15
        if l["unit_price"] == 0:
            continue
        cut = min(l["quantity"] - 1, -(-excess // l["unit_price"]))
        l["quantity"] -= cut
    S = sum(x["unit_price"] * x["quantity"] for x in lines)
    if S > E15:
        for l in lines:
            l["unit_price"] = min(l["unit_price"], 10 ** 9)
            l["quantity"] = 1
    if over:
        l = lines[-1]
        S = sum(x["unit_price"] * x["quantity"] for x in lines)
        # make the subtotal exactly 10^15 or 10^15 + 1 when possible
        rest = S - l["unit_price"] * l["quantity"]
        target = E15 + rng.choice([0, 1])
        need = target - rest
        for q in (10 ** 6, 10 ** 5, 2 * 10 ** 5, 5 * 10 ** 5):
            if need % q == 0 and need // q <= 10 ** 10:
                l["quantity"], l["unit_price"] = q, need // q
                break


# ------------------------------------------------------------ definitions

def subset(rng, pool):
    k = rng.choice([0, 1, 1, 2, 2, 3]) if rng.random() < 0.95 else 0
    return rng.sample(pool, min(k, len(pool)))


def gen_def(rng, code, cur, S, lines, now, k=1.0):
    """k scales how often restrictive fields appear (small k: most pass)."""
    d = {"code": maybe_spell(rng, code)}
    r = rng.random()
    d["status"] = "active" if r < 1 - 0.15 * k else rng.choice(["paused", "archived"])
    typ = "percentage" if rng.random() < 0.6 else "fixed"
    d["type"] = typ
    if typ == "percentage":
        d["value"] = rng.choice([0, 10000, 5000, 2500, 1250, 1000, 3333, 500,
                                 1, 9999, 7500, rng.randint(0, 10000)])
    else:
        d["value"] = rng.choice([0, 1, 100, 500, 999, S, S + 1, max(0, S - 1),
                                 50, 100, 50, 100, 25, 75,
                                 S // 2, E15, rng.randint(0, 10 ** 6),
                                 rng.randint(0, max(1, S))])
    need_cur = typ == "fixed"
    if rng.random() < 0.25 * k:
        d["min_spend"] = max(0, S + rng.choice([-1, 0, 1, -S, 1000, -1000]))
        need_cur = True
    if rng.random() < 0.2 * k:
        d["max_spend"] = min(E15, max(0, S + rng.choice([-1, 0, 1, 1000, -1000, E15])))
        need_cur = True
    if rng.random() < 0.3:
        d["max_discount"] = rng.choice([0, 1, 50, 100, 999, S // 3,
                                        rng.randint(0, 10 ** 6), E15])
        need_cur = True
    if need_cur or rng.random() < 0.3:
        d["currency"] = cur if rng.random() < 0.88 else rng.choice(
            ["USD", "JPY", "KWD", "EUR"])
    if rng.random() < 0.2 * k:
        d["starts_at"] = fmt_ts(rng, near(rng, now))
    if rng.random() < 0.2 * k:
        d["expires_at"] = fmt_ts(rng, near(rng, now))
    if rng.random() < 0.2 * k:
        d["usage_limit"] = rng.choice([0, 1, 2, 10, 100])
    if rng.random() < 0.12 * k:
        d["per_customer_limit"] = rng.choice([0, 1, 2, 5])
    if rng.random() < 0.15 * k:
        d["tiers"] = subset(rng, TIERS)
    if rng.random() < 0.2:
        tv = {}
        for t in subset(rng, TIERS) or ["gold"]:
            if typ == "percentage":
                tv[t] = rng.choice([0, 10000, 5000, 1500, rng.randint(0, 10000)])
            else:
                tv[t] = rng.choice([0, 10, 1000, S, rng.randint(0, 10 ** 6)])
        d["tier_values"] = tv
    if rng.random() < 0.15 * k:
        d["channels"] = subset(rng, CHANNELS)
    if rng.random() < 0.1 * k:
        d["customer_id"] = rng.choice(CUSTS)
    if rng.random() < 0.35 * k:
        t = {}
        if rng.random() < 0.3:
            t["skus"] = subset(rng, SKUS)
        if rng.random() < 0.3:
            t["categories"] = subset(rng, CATS)
        if rng.random() < 0.2:
            t["exclude_skus"] = subset(rng, SKUS)
        if rng.random() < 0.2:
            t["exclude_categories"] = subset(rng, CATS)
        if rng.random() < 0.2:
            stocks = [l.get("stock") for l in lines if l.get("stock") is not None]
            t["low_stock_max"] = rng.choice(stocks + [0, 1, 5]) + \
                rng.choice([0, 0, -1, 1]) if stocks else rng.choice([0, 3, 10])
            t["low_stock_max"] = max(0, t["low_stock_max"])
        if rng.random() < 0.25:
            t["max_margin_bp"] = rng.choice([0, 1, 5000, 3333, 6667, 9000,
                                             10000, 10001, 2000, E15])
        d["targets"] = t
    if rng.random() < 0.6:
        d["combinable"] = rng.random() < 0.6
    if rng.random() < 0.5:
        d["priority"] = rng.choice([0, 0, 1, 1, 2, 3, 10])
    # occasional explicit nulls (= absent)
    if rng.random() < 0.05:
        for k in ("starts_at", "expires_at", "tiers", "channels", "targets",
                  "combinable", "priority", "customer_id"):
            if k not in d and rng.random() < 0.3:
                d[k] = None
    return d


# ------------------------------------------------------------ case

def gen_case(rng):
    case = {}
    cur = rng.choice(CURRENCIES)
    case["currency"] = cur
    for k, vals in (("tax_mode", ["exclusive", "inclusive"]),
                    ("rounding", ["half_up", "half_even"]),
                    ("stacking", ["best_only", "combine"])):
        r = rng.random()
        if r < 0.85:
            case[k] = rng.choice(vals)
        elif r < 0.9:
            case[k] = None
    now = BASE_NOW if rng.random() < 0.7 else BASE_NOW + rng.randint(0, 10 ** 12)
    case["now"] = fmt_ts(rng, now)
    r = rng.random()
    if r < 0.7:
        case["channel"] = rng.choice(CHANNELS)
    elif r < 0.75:
        case["channel"] = None
    r = rng.random()
    if r < 0.6:
        cust = {}
        if rng.random() < 0.85:
            cust["id"] = rng.choice(CUSTS)
        if rng.random() < 0.6:
            cust["tier"] = rng.choice(TIERS + ["platinum"])
        elif rng.random() < 0.1:
            cust["tier"] = None
        case["customer"] = cust
    elif r < 0.65:
        case["customer"] = None

    r = rng.random()
    big = False
    if r < 0.004:
        n = rng.randint(100, 1000)
    elif r < 0.03:
        n = rng.randint(1, 4)
        big = True
    else:
        n = rng.randint(1, 12)
    lines = gen_lines(rng, n, big)
    fit_subtotal(rng, lines)
    case["lines"] = lines
    S = sum(l["unit_price"] * l["quantity"] for l in lines)

    ndef = rng.randint(0, 7)
    codes_def = rng.sample(CODE_POOL, ndef)
    k = rng.choice([1.0, 0.4, 0.15])
    defs = [gen_def(rng, c, cur, S, lines, now, k) for c in codes_def]
    if case.get("stacking") == "combine" and rng.random() < 0.5:
        for d in defs:
            if rng.random() < 0.8:
                d["combinable"] = True
    if defs or rng.random() < 0.8:
        case["definitions"] = defs

    ncodes = rng.randint(1, 5) if rng.random() < 0.93 else rng.randint(1, 20)
    if n > 100:
        ncodes = rng.randint(1, 4)
    codes = []
    used = set()
    for _ in range(ncodes):
        r = rng.random()
        if r < 0.65 and codes_def:
            fresh = [x for x in codes_def if x not in used]
            pick = rng.choice(fresh if fresh and rng.random() < 0.85
                              else codes_def)
            used.add(pick)
            codes.append(maybe_spell(rng, pick))
        elif r < 0.75:
            codes.append(rng.choice(UNKNOWN_POOL))
        elif r < 0.83:
            codes.append(rng.choice(MALFORMED_POOL))
        elif codes and rng.random() < 0.5:
            codes.append(spell(rng, rng.choice(codes).strip()))
        else:
            codes.append(rng.choice(CODE_POOL))
    case["codes"] = codes

    if rng.random() < 0.5:
        usage = {}
        keys = list(codes_def) + rng.sample(UNKNOWN_POOL, 1)
        for k in keys:
            if rng.random() < 0.6:
                u = {}
                if rng.random() < 0.8:
                    u["total"] = rng.choice([0, 0, 1, 2, 9, 10, 100, 1000])
                if rng.random() < 0.6:
                    u["customer"] = rng.choice([0, 0, 1, 2, 5])
                usage[maybe_spell(rng, k)] = u
        case["usage"] = usage
    return case


def gen_tie_case(rng):
    """Adversarial stacking: several unrestricted codes whose totals collide,
    so the plan tie-breaks (fewer codes, then smaller code list) decide."""
    cur = rng.choice(CURRENCIES)
    lines = gen_lines(rng, rng.randint(1, 4), False)
    for l in lines:
        l.pop("stock", None)
        l["unit_price"] = rng.choice([100, 200, 300, 1000, 333])
    ncode = rng.randint(2, 6)
    names = rng.sample(CODE_POOL, ncode)
    typ = rng.choice(["fixed", "percentage"])
    defs = []
    for n in names:
        d = {"code": maybe_spell(rng, n), "status": "active", "type": typ,
             "combinable": rng.random() < 0.6}
        if typ == "fixed":
            d["value"] = rng.choice([0, 50, 100, 150])
            d["currency"] = cur
        else:
            d["value"] = rng.choice([0, 500, 1000, 1500])
        if rng.random() < 0.5:
            d["priority"] = rng.choice([0, 1])
        defs.append(d)
    codes = [maybe_spell(rng, n) for n in names]
    rng.shuffle(codes)
    return {"currency": cur, "now": fmt_ts(rng, BASE_NOW),
            "stacking": rng.choice(["combine", "combine", "best_only"]),
            "rounding": rng.choice(["half_up", "half_even"]),
            "tax_mode": rng.choice(["exclusive", "inclusive"]),
            "lines": lines, "codes": codes, "definitions": defs}


# ------------------------------------------------------------ bad inputs

BAD_VALUES = ["x", 1.5, 2.0, True, False, None, -1, [], {}, 10 ** 15 + 1,
              10 ** 20, -(10 ** 19), "10"]


def mutate_bad(rng, case):
    """Break (usually) one rule of sections 1-3."""
    r = rng.randint(0, 33)
    lines = case["lines"]
    defs = case.get("definitions") or []
    if r == 0:
        del case[rng.choice(["now", "lines", "codes", "currency"])]
    elif r == 1:
        case[rng.choice(["tax_mode", "rounding", "stacking"])] = \
            rng.choice(["EXCLUSIVE", "half-up", "best", "", 1, "combined"])
    elif r == 2:
        case["currency"] = rng.choice(["usd", "US", "USDD", "U$D", 840, ""])
    elif r == 3:
        case["now"] = rng.choice([
            "2026-11-24T10:00:00", "2026-11-24 10:00:00Z",
            "2026-13-24T10:00:00Z", "2026-02-30T10:00:00Z",
            "2026-11-24T24:00:00Z", "2026-11-24T10:60:00Z",
            "2026-11-24T10:00:61Z", "2026-11-24T10:00:00.Z",
            "2026-11-24T10:00:00.1234567890Z", "2026-11-24T10:00:00+0100",
            "2026-11-24T10:00:00+24:00", "2026-11-24T10:00:00+01:60",
            "26-11-24T10:00:00Z", "2026-11-24", 1764000000, "",
            "2026-11-24T10:00Z", "2025-02-29T00:00:00Z",
            "2024-02-29T00:00:00Z", "2026-11-24T10:00:00.5+01:00",
            "2026-11-24T10:00:60Z", "2000-02-29T23:59:60.999999999-23:59"])
    elif r == 4:
        ln = rng.choice(lines)
        ln[rng.choice(["id", "sku", "category", "unit_price", "quantity",
                       "tax_rate_ppm", "stock", "unit_cost"])] = \
            rng.choice(BAD_VALUES)
    elif r == 5:
        ln = rng.choice(lines)
        del ln[rng.choice(["id", "sku", "category", "unit_price", "quantity",
                           "tax_rate_ppm"])]
    elif r == 6:
        ln = rng.choice(lines)
        k, v = rng.choice([("unit_price", 10 ** 10 + 1), ("unit_price", -1),
                           ("quantity", 0), ("quantity", 10 ** 6 + 1),
                           ("tax_rate_ppm", 1000001), ("tax_rate_ppm", -1),
                           ("unit_price", 10 ** 10), ("quantity", 10 ** 6),
                           ("tax_rate_ppm", 1000000), ("stock", 10 ** 15),
                           ("unit_cost", 10 ** 15)])
        ln[k] = v
    elif r == 7:
        case["lines"] = [] if rng.random() < 0.5 else \
            [dict(lines[0], id="l%d" % i) for i in range(rng.choice([1000, 1001]))]
        for l in case["lines"]:
            l["unit_price"] = min(l["unit_price"], 1000)
            l["quantity"] = 1
    elif r == 8:
        case["codes"] = [] if rng.random() < 0.4 else \
            ["C%02d" % i for i in range(rng.choice([20, 21]))]
    elif r == 9:
        case["codes"] = case["codes"] + [rng.choice([1, None, ["A"], True])]
    elif r == 10 and defs:
        d = rng.choice(defs)
        del d[rng.choice(["code", "status", "type", "value"])]
    elif r == 11 and defs:
        d = rng.choice(defs)
        d[rng.choice(["status", "type"])] = rng.choice(
            ["ACTIVE", "disabled", "percent", "", 3])
    elif r == 12 and defs:
        d = rng.choice(defs)
        d["type"] = "percentage"
        d["value"] = rng.choice([10001, 10000, 20000])
    elif r == 13 and defs:
        d = rng.choice(defs)
        k = rng.choice(["value", "min_spend", "max_spend", "max_discount",
                        "usage_limit", "per_customer_limit", "priority"])
        d[k] = rng.choice(BAD_VALUES + [10 ** 15, 0])
        if k in ("min_spend", "max_spend", "max_discount"):
            d["currency"] = case["currency"]
    elif r == 14 and defs:
        d = rng.choice(defs)
        d["code"] = rng.choice(MALFORMED_POOL + ["  ok_code  ", "a-b"])
    elif r == 15 and defs:
        d = dict(rng.choice(defs))
        d["code"] = spell(rng, pricing_ref.normalize_code(d["code"]))
        defs.append(d)
    elif r == 16 and defs:
        d = rng.choice(defs)
        d["currency"] = rng.choice(["usd", "US", 1, "", "USDX"])
    elif r == 17 and defs:
        d = rng.choice(defs)
        d.pop("currency", None)
        if rng.random() < 0.5:
            d["type"] = "fixed"
        else:
            d["min_spend"] = 0
    elif r == 18 and defs:
        d = rng.choice(defs)
        d["combinable"] = rng.choice([1, 0, "true", "false", [], None, True])
    elif r == 19 and defs:
        d = rng.choice(defs)
        d[rng.choice(["starts_at", "expires_at"])] = rng.choice(
            ["2026-11-24", "tomorrow", 5, "2026-11-24T10:00:00+1:00",
             "2026-11-24T10:00:00.123Z", "2026-11-24t10:00:00z"])
    elif r == 20 and defs:
        d = rng.choice(defs)
        d[rng.choice(["tiers", "channels"])] = rng.choice(
            ["gold", [1], [None], {}, ["gold", 2], []])
    elif r == 21 and defs:
        d = rng.choice(defs)
        d["tier_values"] = rng.choice([{"gold": -1}, {"gold": "5"},
                                       {"gold": 10001}, {"gold": 1.5},
                                       ["gold"], {"gold": True},
                                       {"gold": 10 ** 15 + 1}, {}])
    elif r == 22 and defs:
        d = rng.choice(defs)
        d["targets"] = rng.choice([
            [], "x", {"skus": "SKU-1"}, {"categories": [1]},
            {"low_stock_max": -1}, {"max_margin_bp": "5"},
            {"exclude_skus": [None]}, {"low_stock_max": 1.0},
            {"max_margin_bp": 10 ** 15 + 1}, {}])
    elif r == 23 and defs:
        d = rng.choice(defs)
        d["customer_id"] = rng.choice([17, True, [], "c-17"])
    elif r == 24:
        case["customer"] = rng.choice(["c-17", 5, [], {"id": 17},
                                       {"tier": ["gold"]}, {}])
    elif r == 25:
        case["channel"] = rng.choice([5, ["web"], True, ""])
    elif r == 26:
        case["usage"] = rng.choice([
            [], "x", {"SAVE10": 5}, {"SAVE10": {"total": -1}},
            {"SAVE10": {"customer": "1"}}, {"SAVE10": {"total": 1.0}},
            {"SAVE10": {"total": 10 ** 15 + 1}}, {"NOPE": {"total": -1}},
            {"SAVE10": {}, "save10": {}}, {"nope": {}, "NOPE ": {}},
            {"SAVE10": None}, {"SAVE10": {"total": True}}])
    elif r == 27:
        case["definitions"] = rng.choice(["x", {}, [1], [None]])
    elif r == 28:
        # subtotal just over the bound
        l = lines[0]
        l["unit_price"] = 10 ** 9
        l["quantity"] = 10 ** 6
        for x in lines[1:]:
            x["unit_price"] = 0
        lines[-1]["unit_price"] = rng.choice([0, 1])
    elif r == 29:
        case["lines"] = rng.choice(["x", {}, [1], [None], None])
    elif r == 30:
        case["codes"] = rng.choice(["SAVE10", {}, None])
    elif r == 31:
        case = rng.choice([[], "x", 5, None])
    elif r == 32 and defs:
        d = rng.choice(defs)
        d["value"] = rng.choice([True, 1.0, "10", None, -1])
    else:
        ln = rng.choice(lines)
        ln["stock"] = rng.choice([-1, 10 ** 15 + 1, "3", 1.5, True])
    return case


# ------------------------------------------------------------ compare

def canon(x):
    return json.dumps(x, sort_keys=True, separators=(",", ":"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=20261124)
    ap.add_argument("--bin", default="/work/main/build/bin/promo-calc")
    ap.add_argument("--show", type=int, default=5)
    ap.add_argument("--dump", default=None,
                    help="write the mismatching cases here, one per line")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    cases = []
    for _ in range(args.cases):
        c = gen_case(rng) if rng.random() < 0.96 else gen_tie_case(rng)
        if rng.random() < 0.06:
            c = mutate_bad(rng, c)
        cases.append(c)
    texts = [json.dumps(c, separators=(",", ":")) for c in cases]
    for t in texts:
        assert "\n" not in t
    proc = subprocess.run([args.bin], input=("\n".join(texts) + "\n").encode(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        print("promo-calc exited with status %d: %s" %
              (proc.returncode, proc.stderr.decode(errors="replace")[:2000]))
    outs = proc.stdout.decode("utf-8", errors="replace").split("\n")
    if outs and outs[-1] == "":
        outs.pop()
    if len(outs) != len(cases):
        print("promo-calc wrote %d lines for %d cases" % (len(outs), len(cases)))

    passed = failed = 0
    shown = 0
    dump = open(args.dump, "w") if args.dump else None
    for i, case in enumerate(cases):
        # the reference works on the parsed JSON, exactly as the C side sees it
        want = pricing_ref.price(json.loads(texts[i]))
        got_text = outs[i] if i < len(outs) else None
        ok = False
        got = None
        if got_text is not None:
            try:
                got = json.loads(got_text)
            except ValueError:
                got = None
        if got is not None:
            want_err = isinstance(want, dict) and "error" in want
            got_err = isinstance(got, dict) and "error" in got
            if want_err or got_err:
                ok = want_err and got_err
            else:
                ok = canon(want) == canon(got)
        if ok:
            passed += 1
            continue
        failed += 1
        if dump:
            dump.write(texts[i] + "\n")
        if shown < args.show:
            shown += 1
            print("MISMATCH #%d (case %d)" % (shown, i))
            print("  case:     " + texts[i][:4000])
            print("  expected: " + canon(want)[:4000])
            print("  actual:   " + (got_text if got_text is not None
                                    else "<missing>")[:4000])
    if dump:
        dump.close()
    print("difftest: %d passed, %d failed" % (passed, failed))
    return 1 if failed or proc.returncode != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
