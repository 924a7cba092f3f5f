/** @file unit.h  The Check suites that tests/unit/test_unit runs. */
#ifndef SIPEDGE_UNIT_H
#define SIPEDGE_UNIT_H
#include <check.h>

Suite *registrar_suite(void);
Suite *store_suite(void);
Suite *sipmsg_suite(void);
Suite *proxy_suite(void);
Suite *auth_suite(void);
Suite *udp_suite(void);
Suite *limits_suite(void);
Suite *bencode_suite(void);
Suite *cluster_suite(void);
Suite *base_suite(void);

#endif
