/*
 * Compile-only stub of glibc's <argp.h> for the vendored elfutils on musl: two
 * elfutils sources (lib/color.c, lib/printversion.h) include it, musl has none,
 * and libelf -- the only part we link -- never calls it.  Declarations only.
 */
#ifndef ENFORCE_ARGP_STUB_H
#define ENFORCE_ARGP_STUB_H
#include <stdio.h>

typedef int error_t;
struct argp_state;
struct argp_option {
	const char *name;
	int key;
	const char *arg;
	int flags;
	const char *doc;
	int group;
};
typedef error_t (*argp_parser_t)(int key, char *arg, struct argp_state *state);
struct argp {
	const struct argp_option *options;
	argp_parser_t parser;
	const char *args_doc;
	const char *doc;
	const struct argp_child *children;
	char *(*help_filter)(int key, const char *text, void *input);
	const char *argp_domain;
};
struct argp_state {
	const struct argp *root_argp;
	int argc;
	char **argv;
	int next;
	unsigned flags;
	unsigned arg_num;
	int quoted;
	void *input;
	void **child_inputs;
	void *hook;
	char *name;
	FILE *err_stream;
	FILE *out_stream;
	void *pstate;
};
#define OPTION_ARG_OPTIONAL 0x1
#define ARGP_ERR_UNKNOWN 7 /* E2BIG, as in glibc */
#define ARGP_HELP_SEE 0x100
void argp_help(const struct argp *argp, FILE *stream, unsigned flags, char *name);
#endif
