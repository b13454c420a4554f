/*
 * Unit tests of the subject builders in common/broker (no server needed):
 * the subjects are part of the contract (DESIGN.md "Subjects and streams"),
 * and a location or channel id that is not a clean subject token must be
 * refused before it can publish to, or subscribe across, the wrong subject.
 */
#include <criterion/criterion.h>

#include <string.h>

#include "broker.h"

Test(broker_subjects, event_subject_lower_cases_the_kind)
{
    char buf[SF_SUBJECT_MAX];
    sf_error err;
    cr_assert(sf_subject_event(buf, sizeof buf, "TRANSFER_OUT", "STORE-1", &err) == SF_OK, "%s",
              err.msg);
    cr_assert(strcmp(buf, "inv.evt.transfer_out.STORE-1") == 0, "%s", buf);
    cr_assert(sf_subject_event(buf, sizeof buf, "sale", "dc_2", &err) == SF_OK);
    cr_assert(strcmp(buf, "inv.evt.sale.dc_2") == 0, "%s", buf);
}

Test(broker_subjects, dlq_and_channel_subjects)
{
    char buf[SF_SUBJECT_MAX];
    sf_error err;
    cr_assert(sf_subject_dlq(buf, sizeof buf, "poison", &err) == SF_OK);
    cr_assert(strcmp(buf, "inv.dlq.poison") == 0);
    cr_assert(sf_subject_channel(buf, sizeof buf, "web-eu", &err) == SF_OK);
    cr_assert(strcmp(buf, "inv.chan.web-eu") == 0);
}

Test(broker_subjects, rejects_tokens_that_are_not_subject_safe)
{
    char buf[SF_SUBJECT_MAX];
    sf_error err;
    const char *bad[] = {"", "a.b", "a b", "a*", "a>", "caf\xc3\xa9", "x\ty"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert(sf_subject_event(buf, sizeof buf, "SALE", bad[i], &err) == SF_EINVAL,
                  "location '%s' accepted", bad[i]);
        cr_assert(strstr(err.msg, "location") != NULL, "%s", err.msg);
        cr_assert(sf_subject_channel(buf, sizeof buf, bad[i], &err) == SF_EINVAL);
    }
    cr_assert(sf_subject_event(buf, sizeof buf, NULL, "S1", &err) == SF_EINVAL);
    cr_assert(sf_subject_event(buf, sizeof buf, "SALE1", "S1", &err) == SF_EINVAL,
              "kind is letters and _ only");
}

Test(broker_subjects, rejects_tokens_over_64_bytes_and_small_buffers)
{
    char buf[SF_SUBJECT_MAX];
    char id[66];
    memset(id, 'A', 65);
    id[65] = '\0';
    sf_error err;
    cr_assert(sf_subject_channel(buf, sizeof buf, id, &err) == SF_EINVAL);
    id[64] = '\0';
    cr_assert(sf_subject_channel(buf, sizeof buf, id, &err) == SF_OK, "64 bytes is allowed");
    char small[13]; /* "inv.chan.web" and its NUL */
    cr_assert(sf_subject_channel(small, sizeof small, "web", &err) == SF_OK);
    cr_assert(sf_subject_channel(small, sizeof small, "webs", &err) == SF_EINVAL);
    cr_assert(small[0] == '\0', "nothing half-written");
}
