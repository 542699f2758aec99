#ifndef KERNEL_EXIT_H
#define KERNEL_EXIT_H
/* Exit statuses of a QEMU run, as scripts/qemu-test sees them. */
#define EXIT_PASS   0   /* every test passed (or the demo finished) */
#define EXIT_FAIL   1   /* at least one test failed */
#define EXIT_PANIC  2   /* panic() */
#define EXIT_FAULT  3   /* CPU exception */
#define EXIT_USAGE  4   /* bad command line (unknown suite, ...) */
#endif
