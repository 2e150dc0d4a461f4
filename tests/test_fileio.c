#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

#include "fileio.h"
#include "log.h"

#define MAX (4 * 1024 * 1024)

/* A file of n bytes 'a'..'z' in a fresh temporary file, open for reading. */
static int file_of(size_t n)
{
	char path[] = "/tmp/relaywatch-test-fileio.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(unlink(path), 0);
	for (size_t i = 0; i < n; i++) {
		char c = (char)('a' + i % 26);
		assert_int_equal(write(fd, &c, 1), 1);
	}
	return fd;
}

/*
 * A small file under a large maximum costs its size, not the maximum (known_hosts may have 4 MiB
 * and has a few hundred bytes); a file of exactly the maximum is read, one byte more is refused.
 */
static void read_file_sized(void **unused)
{
	char *buf = NULL;
	size_t len = 0;
	int fd = file_of(10);
	assert_int_equal(fileio_read_file(fd, "ten", MAX, &buf, &len), 0);
	assert_int_equal(len, 10);
	assert_string_equal(buf, "abcdefghij");
	assert_true(malloc_usable_size(buf) < 4096);
	free(buf);
	close(fd);

	fd = file_of(0);
	assert_int_equal(fileio_read_file(fd, "empty", MAX, &buf, &len), 0);
	assert_int_equal(len, 0);
	assert_string_equal(buf, "");
	free(buf);
	close(fd);

	fd = file_of(5000);
	assert_int_equal(fileio_read_file(fd, "max", 5000, &buf, &len), 0);
	assert_int_equal(len, 5000);
	assert_int_equal(buf[4999], 'a' + 4999 % 26);
	assert_int_equal(buf[5000], '\0');
	free(buf);
	buf = NULL;
	assert_int_equal(fileio_read_file(fd, "max", 4999, &buf, &len), 1);
	assert_null(buf);
	close(fd);
}

/*
 * Files larger than fstat says: a /proc file (st_size 0) is read whole by growing the buffer, and
 * /dev/zero (endless) is refused once it passes the maximum, not read on.
 */
static void read_file_unsized(void **unused)
{
	char *buf = NULL, *want = malloc(1 << 20);
	size_t len = 0, n = 0;
	ssize_t r;
	assert_non_null(want);
	int fd = open("/proc/self/environ", O_RDONLY);
	assert_true(fd >= 0);
	while ((r = read(fd, want + n, (1 << 20) - n)) > 0) {
		n += (size_t)r;
	}
	assert_true(n > 0 && n < (1 << 20));
	assert_int_equal(fileio_read_file(fd, "environ", MAX, &buf, &len), 0);
	assert_int_equal(len, n);
	assert_memory_equal(buf, want, n);
	assert_int_equal(buf[n], '\0');
	free(buf);
	free(want);
	close(fd);

	buf = NULL;
	fd = open("/dev/zero", O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fileio_read_file(fd, "/dev/zero", 100000, &buf, &len), 1);
	assert_null(buf);
	close(fd);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(read_file_sized),
	cmocka_unit_test(read_file_unsized),
};

UNIT_MAIN("test_fileio", tests)
