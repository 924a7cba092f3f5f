/** @file txn.h  The transaction layer (RFC 3261 §17, RFC 6026) on libuv timers.
 *
 * Server transactions absorb request retransmissions and resend the last response; client
 * transactions retransmit over unreliable transports and time out (Timers A-K). Owners (the
 * registrar, the proxy) get callbacks; a transaction never outlives its owner's knowledge of it:
 * on_gone tells the owner to forget the pointer.
 */
#ifndef SIPEDGE_TXN_H
#define SIPEDGE_TXN_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/config.h"
#include "base/sipmsg.h"
#include "transport/transport.h"

struct flow;
struct txn;

enum txn_state {
	TXN_CALLING,	/* client INVITE */
	TXN_TRYING,	/* non-INVITE */
	TXN_PROCEEDING,
	TXN_COMPLETED,
	TXN_CONFIRMED,	/* server INVITE, ACK received */
	TXN_ACCEPTED,	/* RFC 6026: 2xx to INVITE seen */
	TXN_TERMINATED,
};
const char *txn_state_name(enum txn_state state);

struct txn_user {
	/** Client: a response (1xx, final; 2xx retransmissions while Accepted). resp is borrowed. */
	void (*on_response)(struct txn *ct, msg_t *resp, sip_t *sip, void *arg);
	/** Client: no response will come: 408 (timeout), 503 (send failed), 430/480 (flow gone). */
	void (*on_fail)(struct txn *ct, int status, void *arg);
	/** Server INVITE: a CANCEL for it arrived (already answered 200). */
	void (*on_cancel)(struct txn *st, void *arg);
	/** The transaction is about to be freed: forget it. */
	void (*on_gone)(struct txn *t, void *arg);
};

void txn_init(void);
void txn_shutdown(void);

/* ---- server side ---- */
/** Match a request against live server transactions (§17.2.3). A retransmission is absorbed
 *  (the last response resent) and true returned; an ACK for a non-2xx final is absorbed too. */
bool txn_server_absorb(msg_t *req, sip_t *sip, struct flow *f);
/** New server transaction for req (takes a reference to req). */
struct txn *txn_server_create(msg_t *req, struct flow *f);
/** The INVITE server transaction a CANCEL names, or NULL. */
struct txn *txn_server_find_invite(sip_t *cancel);
/** A CANCEL matched this INVITE server transaction: tell its owner (if still proceeding). */
void txn_server_cancel(struct txn *st);
/** Send a response; takes ownership of resp. 0 on success. */
int txn_respond(struct txn *st, msg_t *resp);
/** Build (sipmsg_response) and send. */
int txn_respond_status(struct txn *st, int status, const char *reason);
void txn_set_user(struct txn *t, const struct txn_user *user, void *arg);
msg_t *txn_request(const struct txn *t);
uint64_t txn_flow_id(const struct txn *t);
enum txn_state txn_state(const struct txn *t);
/** Largest status sent so far (0 if none). */
int txn_status(const struct txn *t);

/* ---- client side ---- */
/** Send req (ownership taken; its top Via must already carry a unique branch) to dest. */
struct txn *txn_client_create(msg_t *req, const struct transport_dest *dest, const struct txn_user *user,
			      void *arg);
/** Route a received response to its client transaction. false if none matches. */
bool txn_client_receive(msg_t *resp, sip_t *sip, struct flow *f);
/** CANCEL a client INVITE (§9.1): sent now if a provisional came, else once one does. */
void txn_client_cancel(struct txn *ct);
/** Forget the owner (it is going away); the transaction finishes on its own. */
void txn_detach(struct txn *t);
/** End a transaction now (its owner's on_gone runs); for a branch no final will come to. */
void txn_abandon(struct txn *t);

#endif
