/*
 * dashboard: the embedded page (see dashboard.h). dashboard_html.h is
 * generated from api/dashboard.html by the Makefile (xxd -i) into the
 * build folder.
 */
#include "dashboard.h"

#include "dashboard_html.h"

const unsigned char *api_dashboard_html(size_t *len)
{
    *len = (size_t)dashboard_html_len;
    return dashboard_html;
}
