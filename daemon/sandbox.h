/*
 * daemon/sandbox.h — confine the current process before it parses untrusted
 * bytes (DESIGN 4): no new privileges, no filesystem access by path
 * (Landlock: only descriptors already open remain usable), no network and no
 * exec (seccomp, via libseccomp). Used by modeld-worker.
 */
#ifndef MD_SANDBOX_H
#define MD_SANDBOX_H

/* Bits of what sandbox_enter managed to apply. */
#define SANDBOX_NNP 1        /* PR_SET_NO_NEW_PRIVS */
#define SANDBOX_LANDLOCK 2   /* filesystem paths denied */
#define SANDBOX_SECCOMP 4    /* network, exec, ptrace... denied */

/*
 * Apply every confinement the kernel offers. Returns the SANDBOX_* bits
 * applied (Landlock may be missing from a kernel; then it is left out), or a
 * negative MD_E* code when seccomp or no_new_privs could not be applied
 * (those are required).
 */
int sandbox_enter(void);

#endif
