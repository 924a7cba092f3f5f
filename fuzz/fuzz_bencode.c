/** @file fuzz_bencode.c  libFuzzer target: the NG protocol's bencode decoder (media/bencode.c),
 *  which reads every datagram an rtpengine (or anyone on the NG port's path) sends us.
 *
 * Oracle besides the sanitizers: a document that decodes must encode back, with our encoder, to
 * exactly the input bytes (the decoder accepts only canonical integers and keeps dictionary
 * order), so decoder and encoder are checked against each other.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "media/bencode.h"

static void encode(struct bencode_writer *w, const struct bencode *v)
{
	switch (v->type) {
	case BENCODE_INT:
		bencode_w_int(w, v->i);
		break;
	case BENCODE_STR:
		bencode_w_str(w, v->s, v->len);
		break;
	case BENCODE_LIST:
	case BENCODE_DICT:
		if (v->type == BENCODE_LIST)
			bencode_w_list(w);
		else
			bencode_w_dict(w);
		for (const struct bencode *c = v->child; c; c = c->next)
			encode(w, c);
		bencode_w_end(w);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bencode_doc doc;
	if (bencode_decode(&doc, (const char *)data, size) != 0)
		return 0;
	/* the lookups NG replies go through */
	char text[64];
	(void)bencode_get_str(doc.root, "result", text, sizeof(text));
	(void)bencode_get(doc.root, "sdp");
	struct bencode_writer w;
	bencode_w_init(&w);
	encode(&w, doc.root);
	if (bencode_w_finish(&w) != 0 || w.len != size || memcmp(w.buf, data, size) != 0)
		abort();
	bencode_w_free(&w);
	bencode_doc_free(&doc);
	return 0;
}
