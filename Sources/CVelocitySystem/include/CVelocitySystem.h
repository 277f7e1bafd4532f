#ifndef C_VELOCITY_SYSTEM_H
#define C_VELOCITY_SYSTEM_H

/// Opens `path` relative to the directory `dirfd` without ever leaving it: `..` and symlinks (absolute ones
/// included) may not resolve to anything outside. Returns a descriptor, or -1 with errno set (EXDEV or ELOOP
/// when the path tried to escape, ENOSYS before Linux 5.6).
int velocity_open_beneath(int dirfd, const char *path, int flags);

#endif
