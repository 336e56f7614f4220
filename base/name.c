/*
 * name: see include/sharehub/name.h. Lowercase so that ids compare as
 * written in any file, and no '@' or spaces, which selectors
 * ("kind@area") and logs (key=value) rely on.
 */
#include "sharehub/name.h"

#include <string.h>

bool shub_name_span(const char *s, size_t n)
{
    if (n == 0 || n > SHUB_NAME_MAX)
        return false;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
        return false;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return false;
    }
    return true;
}

bool shub_is_name(const char *s)
{
    return s && shub_name_span(s, strlen(s));
}
