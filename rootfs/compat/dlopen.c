/*
 * dlopen-test LIBRARY: loads LIBRARY with dlopen(3) and prints what its hello()
 * returns (exit 0), or dlerror() (exit 1). A dynamic glibc program (Makefile:
 * target/compat/), for the trusted-exec cases: a library is mapped executable, which
 * allow_exec_from must allow only from trusted filesystems.
 */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	const char *(*hello)(void);
	void *lib;

	if (argc != 2) {
		fprintf(stderr, "usage: dlopen-test LIBRARY\n");
		return 2;
	}
	lib = dlopen(argv[1], RTLD_NOW);
	if (!lib) {
		printf("dlopen %s: %s\n", argv[1], dlerror());
		return 1;
	}
	hello = (const char *(*)(void))dlsym(lib, "hello");
	if (!hello) {
		printf("dlsym hello: %s\n", dlerror());
		return 1;
	}
	printf("%s\n", hello());
	return 0;
}
