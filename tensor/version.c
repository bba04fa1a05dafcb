/* tensor/version.c — the library's version, as its headers were generated with. */
#include "internal.h"

const char *tg_version(void) { return TG_VERSION_STRING; }
