# Top-level driver: autotools do the real build, out of tree, in build/.
#   make deps   install the Debian packages that are missing, and libwebsockets rebuilt with
#               packaging/libwebsockets/ (tools/install-libwebsockets, once: about a minute)
#   make        build build/sipedge and the demo softphone's bundle (make web)
#   make run    deps + build, then run the daemon in the foreground on etc/sipedge.conf
#   make install  deps + build, then install under PREFIX (default /usr/local): the daemon, its
#               pages and docs, a configuration and users file to start from, a systemd unit
#   make check  deps + sanitizer build + every test
#   make bench  sipedge and Kamailio under the same loads, side by side (tests/bench/README.md)
#   make fuzz   build the libFuzzer target (clang) in build/fuzz and fuzz for FUZZ_TIME seconds
SHELL := /bin/bash
BUILD ?= build
ASAN_BUILD ?= build/asan
FUZZ_BUILD ?= build/fuzz
FUZZ_TIME ?= 300
JOBS ?= $(shell nproc)
CONFIG ?= etc/sipedge.conf
RUN_ARGS ?=

.PHONY: all deps deps-test web run install uninstall check bench fuzz fuzz-build clean distclean format

all: $(BUILD)/sipedge web

# The demo softphone (web/phone/) runs JsSIP, whose npm package ships no browser bundle: esbuild
# makes one from web-src/. The bundle is generated, not committed (.gitignore).
WEB_BUNDLE := web/phone/phone.js
ADMIN_BUNDLE := web/admin/admin.js

web: $(WEB_BUNDLE) $(ADMIN_BUNDLE)

web-src/node_modules/.package-lock.json: web-src/package-lock.json
	cd web-src && npm ci --no-audit --no-fund --loglevel=error

$(WEB_BUNDLE): web-src/phone.js web-src/node_modules/.package-lock.json
	web-src/node_modules/.bin/esbuild web-src/phone.js --bundle --minify --sourcemap \
		--target=chrome100,firefox100,safari15 --log-level=warning --outfile=$@

# The console's status page: uPlot for the charts; esbuild writes admin.css beside it.
$(ADMIN_BUNDLE): web-src/admin.js web-src/node_modules/.package-lock.json
	web-src/node_modules/.bin/esbuild web-src/admin.js --bundle --minify \
		--target=chrome100,firefox100,safari15 --log-level=warning --outfile=$@

deps:
	@tools/install-deps build
	@tools/install-libwebsockets || echo "make deps: warning: libwebsockets could not be rebuilt;" \
		"the stock one accepts unmasked WebSocket frames (doc/security.md)" >&2

deps-test:
	@tools/install-deps test

configure: configure.ac Makefile.am
	autoreconf -fi

$(BUILD)/Makefile: configure
	mkdir -p $(BUILD) && cd $(BUILD) && ../configure --quiet

$(BUILD)/sipedge: $(BUILD)/Makefile FORCE
	$(MAKE) -C $(BUILD) -j$(JOBS) sipedge sipedgectl

$(ASAN_BUILD)/Makefile: configure
	mkdir -p $(ASAN_BUILD) && cd $(ASAN_BUILD) && $(CURDIR)/configure --quiet --enable-sanitizers CFLAGS="-O1 -g"

asan: $(ASAN_BUILD)/Makefile FORCE
	$(MAKE) -C $(ASAN_BUILD) -j$(JOBS) sipedge sipedgectl tests/unit/test_unit tests/bench/sipload

# The fuzzer: clang, ASan+UBSan, the library with coverage hooks (configure --enable-fuzzer).
$(FUZZ_BUILD)/Makefile: configure
	mkdir -p $(FUZZ_BUILD) && cd $(FUZZ_BUILD) && $(CURDIR)/configure --quiet --enable-sanitizers \
		--enable-fuzzer CC=clang CFLAGS="-O1 -g"

fuzz-build: $(FUZZ_BUILD)/Makefile FORCE
	$(MAKE) -C $(FUZZ_BUILD) -j$(JOBS) fuzz/fuzz_sip fuzz/fuzz_bencode

fuzz: deps deps-test fuzz-build
	FUZZ_BIN=$(CURDIR)/$(FUZZ_BUILD)/fuzz/fuzz_sip FUZZ_TIME=$(FUZZ_TIME) tests/fuzz/run

# The demo users file holds passwords: the daemon warns when it is readable by every local user,
# and git keeps no file mode but the x bit, so a fresh clone has it world-readable.
PREFIX ?= /usr/local

install: deps all
	$(MAKE) -C $(BUILD) install prefix=$(PREFIX) SYSTEM_USER=sipedge

uninstall:
	$(MAKE) -C $(BUILD) uninstall prefix=$(PREFIX)

run: deps all
	@chmod go= etc/demo-users 2>/dev/null || true
	$(BUILD)/sipedge -c $(CONFIG) $(RUN_ARGS)

check: deps deps-test asan web fuzz-build
	SIPEDGE_BIN=$(CURDIR)/$(ASAN_BUILD)/sipedge UNIT_BIN=$(CURDIR)/$(ASAN_BUILD)/tests/unit/test_unit \
		FUZZ_BIN=$(CURDIR)/$(FUZZ_BUILD)/fuzz/fuzz_sip tests/run-all

# make bench: sipedge and Kamailio side by side (tests/bench/README.md); about 8 minutes.
bench: deps $(BUILD)/sipedge
	@tools/install-deps bench
	$(MAKE) -C $(BUILD) tests/bench/sipload
	SIPEDGE_BIN=$(CURDIR)/$(BUILD)/sipedge SIPLOAD_BIN=$(CURDIR)/$(BUILD)/tests/bench/sipload tests/bench/run

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(WEB_BUNDLE) $(WEB_BUNDLE).map

distclean: clean
	rm -rf configure Makefile.in aclocal.m4 autom4te.cache build-aux m4/*.m4 config.h.in*

FORCE:
