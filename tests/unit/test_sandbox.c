/* Unit tests for daemon/sandbox.c: a confined process can use the
 * descriptors it has and nothing else. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/sandbox.h"

static void *thread_fn(void *arg)
{
	return arg;
}

/* Child: enter the sandbox, then report each check as a bit in its exit code. */
static int child(int keep_fd)
{
	int got = sandbox_enter();
	if (got < 0 || !(got & SANDBOX_SECCOMP) || !(got & SANDBOX_NNP))
		return 100;
	int bad = 0;
	char c;
	if (read(keep_fd, &c, 1) != 1)                  /* inherited fd still works */
		bad |= 1;
	if (socket(AF_INET, SOCK_STREAM, 0) >= 0 || errno != EPERM)
		bad |= 2;                                 /* no network */
	if (socket(AF_UNIX, SOCK_STREAM, 0) >= 0)
		bad |= 4;
	char *argv[] = { "/bin/true", NULL };
	execv("/bin/true", argv);                         /* no new programs */
	if (errno != EPERM)
		bad |= 8;
	if (fork() >= 0)                                  /* no new processes */
		bad |= 16;
	pthread_t t;                                      /* threads are fine */
	if (pthread_create(&t, NULL, thread_fn, NULL) != 0 || pthread_join(t, NULL) != 0)
		bad |= 32;
	if ((got & SANDBOX_LANDLOCK) && open("/etc/hostname", O_RDONLY) >= 0)
		bad |= 64;                                /* no paths, when Landlock is there */
	return bad;
}

static void test_confinement(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child(p[0]));
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_confinement) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
