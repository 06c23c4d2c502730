/* daemon/sandbox.c — see sandbox.h. */
#include "daemon/sandbox.h"
#include "common/err.h"

#include <errno.h>
#include <linux/landlock.h>
#include <sched.h>
#include <seccomp.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int landlock(void)
{
#ifdef SYS_landlock_create_ruleset
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (abi < 1)
		return 0; /* not in this kernel, or disabled */
	struct landlock_ruleset_attr attr = { 0 };
	/* Everything ABI 1 knows; later ABIs add refer/truncate: ask for those
	 * only where the kernel has them. No rule is added: no path is allowed. */
	attr.handled_access_fs = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
				 LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR |
				 LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
				 LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |
				 LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |
				 LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
				 LANDLOCK_ACCESS_FS_MAKE_SYM;
#ifdef LANDLOCK_ACCESS_FS_REFER
	if (abi >= 2)
		attr.handled_access_fs |= LANDLOCK_ACCESS_FS_REFER;
#endif
	size_t sz = sizeof(uint64_t); /* ABI 1-3: handled_access_fs only */
	int fd = (int)syscall(SYS_landlock_create_ruleset, &attr, sz, 0);
	if (fd < 0)
		return 0;
	int rc = (int)syscall(SYS_landlock_restrict_self, fd, 0);
	close(fd);
	return rc == 0 ? SANDBOX_LANDLOCK : 0;
#else
	return 0;
#endif
}

static int seccomp(void)
{
	/* Allow by default (the parsers need only ordinary syscalls), deny what
	 * a compromised parser would want: the network, new programs, other
	 * processes, the kernel's attack surface. */
	static const int denied[] = {
		SCMP_SYS(socket), SCMP_SYS(socketpair), SCMP_SYS(connect), SCMP_SYS(bind),
		SCMP_SYS(listen), SCMP_SYS(accept), SCMP_SYS(accept4), SCMP_SYS(execve),
		SCMP_SYS(execveat), SCMP_SYS(fork), SCMP_SYS(vfork), SCMP_SYS(ptrace),
		SCMP_SYS(process_vm_readv), SCMP_SYS(process_vm_writev), SCMP_SYS(mount),
		SCMP_SYS(umount2), SCMP_SYS(unshare), SCMP_SYS(setns), SCMP_SYS(chroot),
		SCMP_SYS(pivot_root), SCMP_SYS(keyctl), SCMP_SYS(add_key), SCMP_SYS(request_key),
		SCMP_SYS(bpf), SCMP_SYS(perf_event_open), SCMP_SYS(kexec_load),
		SCMP_SYS(init_module), SCMP_SYS(finit_module), SCMP_SYS(delete_module),
		SCMP_SYS(userfaultfd), SCMP_SYS(io_uring_setup), SCMP_SYS(memfd_create),
		SCMP_SYS(kill), SCMP_SYS(tkill), SCMP_SYS(open_by_handle_at),
		SCMP_SYS(name_to_handle_at),
	};
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return md_fail(MD_ENOMEM, "seccomp_init failed");
	int rc = 0;
	for (size_t i = 0; i < sizeof denied / sizeof denied[0] && !rc; i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), denied[i], 0);
	/* threads yes (the pack writer hashes on one), new processes no: clone
	 * without CLONE_THREAD fails; clone3's flags are behind a pointer, so it
	 * reports ENOSYS and glibc falls back to clone */
	if (!rc)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
				      SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0));
	if (!rc)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	if (!rc)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	return rc ? md_fail(MD_EPERM, "seccomp: %s", strerror(-rc)) : SANDBOX_SECCOMP;
}

int sandbox_enter(void)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return md_fail(MD_EPERM, "no_new_privs: %s", strerror(errno));
	int got = SANDBOX_NNP | landlock();
	int s = seccomp();
	if (s < 0)
		return s;
	return got | s;
}
