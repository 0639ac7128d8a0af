/*
 * open32 PATH: opens PATH and reads a byte, as a 32-bit program. Built static for
 * i386 and 32-bit ARM (Makefile: target/compat/), it runs on x86_64 and arm64
 * kernels through their compat syscall entry, which the 64-bit syscall tracepoints
 * do not see. Prints `open32 PATH: ok` (exit 0) or `open32 PATH: errno N` (exit 1).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char c;
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: open32 PATH\n");
		return 2;
	}
	fd = open(argv[1], O_RDONLY);
	if (fd < 0 || read(fd, &c, 1) < 0) {
		printf("open32 %s: errno %d\n", argv[1], errno);
		return 1;
	}
	printf("open32 %s: ok\n", argv[1]);
	return 0;
}
