/** @file seen.h  Signatures seen recently: a signed request between nodes is taken once.
 *
 * Two generations of a set of 64-bit keys: a key lives between one and two windows (the window
 * is cluster.max_clock_skew, the age a signature may have), so a copy of a signed request sent
 * again while its timestamp is still accepted finds it. Memory follows the rate of signed
 * requests over two windows: 8 bytes per request, the sets at most half full.
 */
#ifndef SIPEDGE_CLUSTER_SEEN_H
#define SIPEDGE_CLUSTER_SEEN_H
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/** window: seconds a key must at least be kept. */
void seen_init(int window);
/** true if key was seen within the window; else it is remembered now and false. Without
 *  memory for it the key is not remembered (false): the signature and its age still decide. */
bool seen_check_and_add(uint64_t key, time_t now);
void seen_shutdown(void);

#endif
