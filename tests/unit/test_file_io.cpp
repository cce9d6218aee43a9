// util/file_io: whole-file reads with a size cap, line-by-line reads across
// buffer boundaries, small writes; missing, unreadable and oversized files.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "util/file_io.h"

// cmocka last: its fail() macro clashes with the C++ library.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

using namespace rampart;

namespace {

std::string make_dir() {
    char tmpl[] = "/tmp/rampart-fileio-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    return tmpl;
}

void remove_dir(const std::string& dir) {
    std::string cmd = "rm -rf '" + dir + "'";
    assert_int_equal(system(cmd.c_str()), 0);
}

std::vector<std::string> lines_of(const std::string& path) {
    std::vector<std::string> lines;
    assert_true(util::for_each_line(path, [&lines](std::string_view l) { lines.emplace_back(l); }));
    return lines;
}

void test_write_then_read_back(void**) {
    std::string dir = make_dir();
    std::string path = dir + "/f";
    std::string error;
    std::string big(100000, 'x');  // several read buffers
    big[12345] = '\0';             // binary-safe
    assert_true(util::write_small_file(path, big, &error));
    std::string back;
    assert_true(util::read_whole_file(path, &back, &error));
    assert_true(back == big);
    // Rewriting truncates.
    assert_true(util::write_small_file(path, "short", &error));
    assert_true(util::read_whole_file(path, &back, &error));
    assert_string_equal(back.c_str(), "short");
    remove_dir(dir);
}

void test_missing_and_oversized_files_say_why(void**) {
    std::string dir = make_dir();
    std::string error;
    std::string out = "untouched";
    assert_false(util::read_whole_file(dir + "/none", &out, &error));
    assert_string_equal(error.c_str(), (dir + "/none: No such file or directory").c_str());
    assert_string_equal(out.c_str(), "untouched");
    assert_true(util::write_small_file(dir + "/f", std::string(1025, 'a'), &error));
    assert_false(util::read_whole_file(dir + "/f", &out, &error, 1024));
    assert_string_equal(error.c_str(), (dir + "/f: larger than allowed").c_str());
    assert_string_equal(out.c_str(), "untouched");
    assert_true(util::read_whole_file(dir + "/f", &out, &error, 1025));
    assert_int_equal(out.size(), 1025);
    // A directory opens but cannot be read.
    assert_false(util::read_whole_file(dir, &out, &error));
    assert_false(util::read_whole_file(dir, &out, nullptr));  // no error wanted
    assert_false(util::write_small_file(dir + "/no/such/dir", "x", &error));
    assert_string_equal(error.c_str(), (dir + "/no/such/dir: No such file or directory").c_str());
    remove_dir(dir);
}

void test_lines_across_buffers_and_without_a_last_newline(void**) {
    std::string dir = make_dir();
    std::string path = dir + "/lines";
    std::string error;
    std::string long_line(40000, 'L');  // spans three 16 KiB reads
    assert_true(util::write_small_file(path, "a\n\n" + long_line + "\nlast", &error));
    std::vector<std::string> lines = lines_of(path);
    assert_int_equal(lines.size(), 4);
    assert_string_equal(lines[0].c_str(), "a");
    assert_string_equal(lines[1].c_str(), "");
    assert_true(lines[2] == long_line);
    assert_string_equal(lines[3].c_str(), "last");
    assert_true(util::write_small_file(path, "", &error));
    assert_int_equal(lines_of(path).size(), 0);
    assert_true(util::write_small_file(path, "one\n", &error));
    assert_int_equal(lines_of(path).size(), 1);
    assert_false(util::for_each_line(dir + "/none", [](std::string_view) { fail(); }));
    remove_dir(dir);
}

}  // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_then_read_back),
        cmocka_unit_test(test_missing_and_oversized_files_say_why),
        cmocka_unit_test(test_lines_across_buffers_and_without_a_last_newline),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
