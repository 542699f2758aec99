/*
 * lib/newlib/syscalls.c - newlib's system-call layer for the strata kernel.
 *
 * How newlib reaches the operating system
 * ---------------------------------------
 * newlib is built (scripts/build-newlib) with
 * --disable-newlib-supplied-syscalls and without REENTRANT_SYSCALLS_PROVIDED,
 * so the chain for, say, printf is
 *
 *     printf -> _vfprintf_r -> __sflush_r -> _write_r(reent, fd, buf, n)
 *                                            (libc/reent/writer.c)
 *                                         -> _write(fd, buf, n)   <- here
 *
 * libc's _write_r sets errno = 0, calls the plain _write, and if that
 * returns -1 with errno set, copies errno into reent->_errno.  So the
 * functions below are the *plain* underscore names, and they report errors
 * by setting the global errno (newlib's errno macro is
 * *__errno() == _REENT->_errno, the current reent), exactly like a Unix
 * system call.  (On x86_64 newlib would normally call write(), sbrk(), ...
 * without the underscore - configure.host sets MISSING_SYSCALL_NAMES for
 * it - build-newlib undoes that so both architectures use these names.)
 *
 * The "files" this kernel has
 * ---------------------------
 * Only the console: descriptors 0, 1 and 2.  1 and 2 write to the serial
 * console through console_write() (which turns '\n' into "\r\n"); 0 reads
 * as end-of-file because the kernel has no input.  _fstat says all three
 * are character devices and _isatty says they are terminals, which is what
 * makes newlib line-buffer stdout (libc/stdio/makebuf.c: a character
 * device that isatty() gets __SLBF) so each printf line appears at once.
 * Every other descriptor is EBADF; _open always fails with ENOENT, so
 * fopen() fails cleanly while fmemopen/open_memstream (which need no
 * descriptor) work.
 *
 * Time: there is no wall clock and no per-process CPU accounting, so
 * time() (via _gettimeofday) and clock() (via _times) fail with ENOSYS;
 * they are here so that code calling them links.  Use arch_cycles() to
 * measure.
 *
 * Memory: _sbrk must never be called - strata is newlib's malloc
 * (lib/newlib/malloc_glue.c) and libc.a is built with -DMALLOC_PROVIDED, so
 * nothing in it grows a heap.  If something does call it, say so on the
 * console and fail with ENOMEM rather than hand out memory strata does not
 * know about.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/times.h>
#include <sys/types.h>

#include <kernel/arch.h>
#include <kernel/exit.h>
#include <kernel/console.h>

/*
 * newlib declares these in <sys/unistd.h>, <sys/stat.h> and
 * <sys/_default_fcntl.h> only when _COMPILING_NEWLIB is defined; these
 * declarations use the same types.
 */
int _close(int fd);
int _fstat(int fd, struct stat *st);
pid_t _getpid(void);
int _isatty(int fd);
int _kill(int pid, int sig);
_off_t _lseek(int fd, _off_t offset, int whence);
int _open(const char *path, int flags, ...);
_ssize_t _read(int fd, void *buf, size_t n);
void *_sbrk(ptrdiff_t increment);
_ssize_t _write(int fd, const void *buf, size_t n);
void _exit(int status) __attribute__((__noreturn__));
int _gettimeofday(struct timeval *tv, void *tz);
clock_t _times(struct tms *buf);

/* The kernel is one process as far as newlib is concerned. */
#define KERNEL_PID 1

static int is_console(int fd)
{
	return fd >= 0 && fd <= 2;
}

static void log_line(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	console_write(s, n);
}

_ssize_t _write(int fd, const void *buf, size_t n)
{
	if (fd != 1 && fd != 2) {
		errno = EBADF;
		return -1;
	}
	console_write(buf, n);
	return (_ssize_t)n;
}

_ssize_t _read(int fd, void *buf, size_t n)
{
	(void)buf;
	(void)n;
	if (!is_console(fd)) {
		errno = EBADF;
		return -1;
	}
	return 0;               /* no keyboard: stdin is at end-of-file */
}

int _close(int fd)
{
	if (!is_console(fd)) {
		errno = EBADF;
		return -1;
	}
	return 0;               /* the console stays usable */
}

_off_t _lseek(int fd, _off_t offset, int whence)
{
	(void)offset;
	(void)whence;
	errno = is_console(fd) ? ESPIPE : EBADF;
	return -1;
}

int _fstat(int fd, struct stat *st)
{
	if (!is_console(fd)) {
		errno = EBADF;
		return -1;
	}
	*st = (struct stat){ 0 };
	st->st_mode = S_IFCHR | 0620;
	/* st_blksize 0: newlib's __swhatbuf_r then uses BUFSIZ. */
	return 0;
}

int _isatty(int fd)
{
	if (is_console(fd))
		return 1;
	errno = EBADF;
	return 0;
}

int _open(const char *path, int flags, ...)
{
	(void)path;
	(void)flags;
	errno = ENOENT;         /* no file system */
	return -1;
}

pid_t _getpid(void)
{
	return KERNEL_PID;
}

/*
 * raise() with a default action (abort() is raise(SIGABRT) then _exit(1))
 * ends up here with our own pid.  Signal 0 only asks whether the process
 * exists; any other signal to ourselves terminates the kernel the way an
 * unhandled signal terminates a process, with the panic status so the
 * test runner reports it as a crash and not as a test failure.
 */
int _kill(int pid, int sig)
{
	if (pid != KERNEL_PID) {
		errno = ESRCH;
		return -1;
	}
	if (sig == 0)
		return 0;
	if (sig < 0 || sig >= NSIG) {
		errno = EINVAL;
		return -1;
	}
	log_line(sig == SIGABRT ? "newlib: abort() called, stopping the kernel\n"
	                        : "newlib: fatal signal raised, stopping the kernel\n");
	arch_exit(EXIT_PANIC);
}

/* exit() runs the atexit handlers and flushes stdio, then calls this. */
void _exit(int status)
{
	arch_exit(status);
}

void *_sbrk(ptrdiff_t increment)
{
	(void)increment;
	log_line("sbrk called: newlib tried to grow the heap; strata provides malloc\n");
	errno = ENOMEM;
	return (void *)-1;
}

int _gettimeofday(struct timeval *tv, void *tz)
{
	(void)tv;
	(void)tz;
	errno = ENOSYS;
	return -1;
}

clock_t _times(struct tms *buf)
{
	(void)buf;
	errno = ENOSYS;
	return (clock_t)-1;
}
