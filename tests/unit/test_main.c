/** @file test_main.c  Runs every unit-test suite; the exit status says whether all passed. */
#include <stdlib.h>

#include "tests/unit/unit.h"

int main(void)
{
	SRunner *sr = srunner_create(registrar_suite());
	srunner_add_suite(sr, store_suite());
	srunner_add_suite(sr, sipmsg_suite());
	srunner_add_suite(sr, proxy_suite());
	srunner_add_suite(sr, auth_suite());
	srunner_add_suite(sr, udp_suite());
	srunner_add_suite(sr, limits_suite());
	srunner_add_suite(sr, bencode_suite());
	srunner_add_suite(sr, cluster_suite());
	srunner_add_suite(sr, base_suite());
	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
