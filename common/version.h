/* common/version.h — the release both binaries report (--version, status). */
#ifndef MD_VERSION_H
#define MD_VERSION_H

#define MODELD_VERSION "0.1.0"

#endif
