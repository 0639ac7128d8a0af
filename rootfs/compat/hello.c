/* libhello.so: what dlopen-test loads. */
const char *hello(void)
{
	return "hello-from-library";
}
