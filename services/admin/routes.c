/* The admin's route table: every path and method it serves, with the roles
 * allowed. docs/openapi.json documents the same set (check_admin compares
 * them both ways). */
#include <string.h>

#include "admin.h"

#define R ADMIN_ROLES_READ
#define W ADMIN_ROLES_WRITE
#define A ADMIN_ROLE_ADMIN

/* Literal paths come before templates that could match them
 * ("/v1/codes/bulk" before "/v1/codes/{code}"). */
static const admin_route_t routes[] = {
    {"GET", "/healthz", 0, h_healthz},
    {"GET", "/readyz", 0, h_readyz},
    {"GET", "/metrics", 0, h_metrics},
    {"GET", "/", 0, h_ui_index},
    {"GET", "/ui/{file}", 0, h_ui_file},
    {"GET", "/v1/openapi.json", 0, h_openapi},
    {"GET", "/v1/me", R | ADMIN_ROLE_CHECKOUT, h_me},
    {"GET", "/v1/codes", R, h_codes_list},
    {"POST", "/v1/codes", W, h_codes_create},
    {"POST", "/v1/codes/bulk", W, h_codes_bulk},
    {"POST", "/v1/codes/vip", W, h_codes_vip},
    {"GET", "/v1/codes/{code}", R, h_codes_get},
    {"PUT", "/v1/codes/{code}", W, h_codes_update},
    {"POST", "/v1/codes/{code}/pause", W, h_codes_pause},
    {"POST", "/v1/codes/{code}/resume", W, h_codes_resume},
    {"POST", "/v1/codes/{code}/archive", W, h_codes_archive},
    {"GET", "/v1/codes/{code}/redemptions", R, h_redemptions},
    {"POST", "/v1/validate", ADMIN_ROLE_ADMIN | ADMIN_ROLE_CHECKOUT, h_validate},
    {"GET", "/v1/dashboard", R, h_dashboard},
    {"GET", "/v1/usage", R, h_usage},
    {"GET", "/v1/audit", R, h_audit},
    {"GET", "/v1/dlq", R, h_dlq},
    {"POST", "/v1/dlq/replay", W, h_dlq_replay},
    {"GET", "/v1/tokens", A, h_tokens_list},
    {"POST", "/v1/tokens", A, h_tokens_create},
    {"DELETE", "/v1/tokens/{id}", A, h_tokens_revoke},
};

const admin_route_t *admin_routes(size_t *count)
{
        *count = sizeof(routes) / sizeof(routes[0]);
        return routes;
}

/* Matches path against the template; path parameters go to params. The
 * template's "{file}" (static files) takes the rest of the path. */
static int match(const char *tmpl, const char *path, admin_req_t *r)
{
        size_t np = 0;

        while (*tmpl && *path) {
                if (*tmpl == '{') {
                        const char *close = strchr(tmpl, '}');
                        int greedy = strncmp(tmpl, "{file}", 6) == 0;
                        size_t n = greedy ? strlen(path) : strcspn(path, "/");

                        if (!close || n == 0 || n >= sizeof(r->params[0]) ||
                            np == ADMIN_MAX_PARAMS)
                                return 0;
                        memcpy(r->params[np], path, n);
                        r->params[np][n] = '\0';
                        np++;
                        tmpl = close + 1;
                        path += n;
                        continue;
                }
                if (*tmpl != *path)
                        return 0;
                tmpl++;
                path++;
        }
        return *tmpl == '\0' && *path == '\0';
}

const admin_route_t *admin_route_match(const char *method, const char *path,
                                       admin_req_t *r, int *path_known)
{
        size_t i;

        *path_known = 0;
        for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
                if (!match(routes[i].path, path, r))
                        continue;
                if (strcmp(routes[i].method, method) == 0)
                        return &routes[i];
                *path_known = 1;
        }
        return NULL;
}

const char *admin_role_name(unsigned role)
{
        switch (role) {
        case ADMIN_ROLE_ADMIN:
                return "admin";
        case ADMIN_ROLE_MARKETER:
                return "marketer";
        case ADMIN_ROLE_ANALYST:
                return "analyst";
        case ADMIN_ROLE_CHECKOUT:
                return "checkout";
        default:
                return NULL;
        }
}

unsigned admin_role_parse(const char *name)
{
        unsigned b;

        for (b = 1; b <= ADMIN_ROLE_CHECKOUT; b <<= 1)
                if (name && strcmp(admin_role_name(b), name) == 0)
                        return b;
        return 0;
}
