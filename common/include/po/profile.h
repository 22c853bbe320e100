/* po_profiles: the channel and account profiles that tune intake
 * (deploy/intake-profiles.conf, format in docs/intake.md). A profile is
 * looked up per order: the section [account <channel>/<account>] if there
 * is one, else [channel <channel>], else [default]; each section starts as a
 * copy of the one below it and overrides what it sets. */
#ifndef PO_PROFILE_H
#define PO_PROFILE_H

#include <stddef.h>

#include "po/channel.h"

typedef struct po_profiles po_profiles_t;

/* Loads path, or the built-in defaults when path is NULL (default category
 * "uncategorized", no required fields, zero total tolerance). Returns NULL
 * with "file:line: what" in errstr on a syntax or value error. */
po_profiles_t *po_profiles_load(const char *path, char *errstr, size_t errstr_size);

/* Parses a configuration text (for tests). */
po_profiles_t *po_profiles_parse(const char *text, size_t len, const char *name,
                                 char *errstr, size_t errstr_size);

/* The profile for channel and account; never NULL. Owned by profiles. */
const po_channel_profile_t *po_profiles_lookup(const po_profiles_t *profiles,
                                               const char *channel, const char *account);

/* Accepts NULL. */
void po_profiles_destroy(po_profiles_t *profiles);

#endif
