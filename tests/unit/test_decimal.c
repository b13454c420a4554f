/*
 * test_decimal: sf_decimal_parse, the one reader of supplier quantities
 * (adapter.h): what is a decimal ("12", "-3", "2.50", "0.000001"), the
 * exact units/scale it gives, and every refusal with its reason naming the
 * field (sign only, exponent, comma, spaces, thousands separators, more
 * than 6 decimals, more than 18 digits, bytes that are not text).
 */
#include <criterion/criterion.h>
#include <string.h>

#include "../../suppliers/adapter.h"
#include "leak_guard.h"

static void ok(const char *s, int64_t units, int scale)
{
    sf_decimal d = {-1, -1};
    sf_error err;
    sf_status st = sf_decimal_parse(s, strlen(s), "qty", &d, &err);
    cr_assert(st == SF_OK, "'%s' refused: %s", s, err.msg);
    cr_assert(d.units == units && d.scale == scale, "'%s' -> {%lld, %d}, want {%lld, %d}", s,
              (long long)d.units, d.scale, (long long)units, scale);
}

static void bad(const char *s, size_t len, const char *msg)
{
    sf_decimal d = {7, 7};
    sf_error err;
    sf_status st = sf_decimal_parse(s, len, "qty", &d, &err);
    cr_assert(st == SF_EINVAL, "'%s' accepted", s);
    cr_assert(strcmp(err.msg, msg) == 0, "\n  got:  %s\n  want: %s", err.msg, msg);
    cr_assert(d.units == 7 && d.scale == 7, "output untouched on failure");
}

LEAK_TEST(decimal, integers)
{
    ok("12", 12, 0);
    ok("0", 0, 0);
    ok("-3", -3, 0);
    ok("+5", 5, 0);
    ok("-0", 0, 0);
    ok("007", 7, 0);
}

LEAK_TEST(decimal, fractions_keep_their_scale)
{
    ok("2.5", 25, 1);
    ok("2.50", 250, 2);
    ok("0.25", 25, 2);
    ok("0.000001", 1, 6);
    ok("-1.125", -1125, 3);
    ok("12.000000", 12000000, 6);
}

LEAK_TEST(decimal, eighteen_digits_are_exact)
{
    ok("999999999999999999", INT64_C(999999999999999999), 0);
    ok("-999999999999.999999", -INT64_C(999999999999999999), 6);
    ok("123456789012.345678", INT64_C(123456789012345678), 6);
    /* leading zeros are not significant */
    ok("00000000000000000000012", 12, 0);
    ok("0.000123", 123, 6);
}

LEAK_TEST(decimal, parses_only_the_given_length)
{
    sf_decimal d;
    sf_error err;
    cr_assert(sf_decimal_parse("12;EA", 2, "qty", &d, &err) == SF_OK);
    cr_assert(d.units == 12 && d.scale == 0);
}

LEAK_TEST(decimal, refuses_more_than_six_decimals)
{
    bad("1.2345678", 9, "field qty: '1.2345678' is not a decimal number (more than 6 decimals)");
    bad("0.0000001", 9, "field qty: '0.0000001' is not a decimal number (more than 6 decimals)");
}

LEAK_TEST(decimal, refuses_more_than_eighteen_digits)
{
    bad("1000000000000000000", 19,
        "field qty: '1000000000000000000' is not a decimal number (more than 18 digits)");
    bad("9223372036854775808", 19,
        "field qty: '9223372036854775808' is not a decimal number (more than 18 digits)");
    bad("1234567890123.456789", 20,
        "field qty: '1234567890123.456789' is not a decimal number (more than 18 digits)");
}

LEAK_TEST(decimal, refuses_what_is_not_a_plain_decimal)
{
    bad("", 0, "field qty: '' is not a decimal number (empty)");
    bad("-", 1, "field qty: '-' is not a decimal number (no digits)");
    bad("+", 1, "field qty: '+' is not a decimal number (no digits)");
    bad(".5", 2, "field qty: '.5' is not a decimal number (no digit before '.')");
    bad("5.", 2, "field qty: '5.' is not a decimal number (no digit after '.')");
    bad("1.2.3", 5, "field qty: '1.2.3' is not a decimal number (unexpected '.' at byte 4)");
    bad("1e3", 3, "field qty: '1e3' is not a decimal number (unexpected 'e' at byte 2)");
    bad("2,5", 3, "field qty: '2,5' is not a decimal number (unexpected ',' at byte 2)");
    bad("1,000", 5, "field qty: '1,000' is not a decimal number (unexpected ',' at byte 2)");
    bad(" 12", 3, "field qty: ' 12' is not a decimal number (unexpected byte 0x20 at byte 1)");
    bad("12 ", 3, "field qty: '12 ' is not a decimal number (unexpected byte 0x20 at byte 3)");
    bad("--1", 3, "field qty: '--1' is not a decimal number (unexpected '-' at byte 2)");
    bad("0x10", 4, "field qty: '0x10' is not a decimal number (unexpected 'x' at byte 2)");
    bad("NaN", 3, "field qty: 'NaN' is not a decimal number (unexpected 'N' at byte 1)");
}

LEAK_TEST(decimal, quotes_hostile_bytes_in_the_reason)
{
    bad("1\n2", 3, "field qty: '1\\x0a2' is not a decimal number (unexpected byte 0x0a at byte 2)");
    bad("\xe9"
        "5",
        2, "field qty: '\\xe95' is not a decimal number (unexpected byte 0xe9 at byte 1)");
    bad("1\0002", 3,
        "field qty: '1\\x002' is not a decimal number (unexpected byte 0x00 at byte 2)");
}

LEAK_TEST(decimal, names_the_field)
{
    sf_decimal d;
    sf_error err;
    cr_assert(sf_decimal_parse("x", 1, "units_per_pack", &d, &err) == SF_EINVAL);
    cr_assert(
        strcmp(err.msg,
               "field units_per_pack: 'x' is not a decimal number (unexpected 'x' at byte 1)") == 0,
        "%s", err.msg);
}
