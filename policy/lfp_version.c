/* lfp_version: the library's version. */
#include "lfp_version.h"

const char *lfp_version(void) { return LFP_VERSION; }
int lfp_version_number(void) { return LFP_VERSION_NUMBER; }
