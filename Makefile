# modeld — top-level Makefile. Plain GNU make; every .c file of a module
# directory is picked up, so adding a file needs no edit here.
#
#   make            build build/modeld and build/modelctl
#   make run        build, then start modeld in the foreground on its defaults
#   make test       build, run the unit tests (plain and ASan+UBSan) and the
#                   integration tests; ends with "N passed, N failed"
#   make install    PREFIX=/usr/local DESTDIR= : binaries, man pages, units
#   make fuzz       build the libFuzzer harnesses and run each for FUZZ_SECONDS

PREFIX   ?= /usr/local
DESTDIR  ?=
BUILD    ?= build
CC       ?= cc
PKGS      = lmdb libcurl libarchive libgit2 jansson yaml-0.1 libcrypto libxxhash \
            libmicrohttpd libseccomp
CFLAGS   ?= -O2 -g
WARN      = -std=c17 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
            -Wno-missing-field-initializers
CPPFLAGS += -D_GNU_SOURCE -I. $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread
# modeld links lazy/ in place of these four and dlopen()s them on first use
# (common/lazylib.h): an idle daemon does not carry them and what they load
LAZY_PKGS = libcurl libarchive libgit2 libmicrohttpd
MODELD_LDLIBS = $(shell pkg-config --libs $(filter-out $(LAZY_PKGS),$(PKGS)) 2>/dev/null) \
		-lpthread
SAN_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=all

# The daemon side (everything below the socket) and the client side (what
# modelctl and libmodeld are made of). cli/ links only the client side.
CORE_DIRS   = common registry converters sources meta
DAEMON_SRCS = $(filter-out daemon/main.c daemon/worker_main.c,$(wildcard daemon/*.c))
CORE_SRCS   = $(foreach d,$(CORE_DIRS),$(wildcard $(d)/*.c)) $(DAEMON_SRCS)
CLIENT_SRCS = $(wildcard common/*.c) $(wildcard client/*.c)
CLI_SRCS    = $(wildcard cli/*.c)
LAZY_SRCS   = $(wildcard lazy/*.c)
UNIT_SRCS   = $(wildcard tests/unit/test_*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
CORE_OBJS   = $(call obj,$(CORE_SRCS))
CLIENT_OBJS = $(call obj,$(CLIENT_SRCS))
UNIT_BINS   = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))

.PHONY: all run test unit unit-asan integration install clean deps test-deps fuzz bench
all: deps $(BUILD)/modeld $(BUILD)/modelctl $(BUILD)/modeld-worker $(BUILD)/libmodeld.so \
	$(BUILD)/modeld.pc

deps:
	@./scripts/deps.sh
test-deps:
	@./scripts/deps.sh --test

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/libmdcore.a: $(CORE_OBJS)
	@rm -f $@; ar rcs $@ $^
$(BUILD)/libmodeld.a: $(CLIENT_OBJS)
	@rm -f $@; ar rcs $@ $^

# --- libmodeld.so: the client side built -fPIC, exporting only client/modeld.h
# (client/libmodeld.map), and its pkg-config file (docs/serving.md) ---------
PIC_OBJS = $(patsubst %.c,$(BUILD)/pic/%.o,$(CLIENT_SRCS))
CLIENT_PKGS = jansson libcrypto
$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) -fPIC -MMD -MP -c -o $@ $<
$(BUILD)/libmodeld.so: $(PIC_OBJS) client/libmodeld.map
	$(CC) $(CFLAGS) $(LDFLAGS) -shared -Wl,-soname,libmodeld.so.0 \
		-Wl,--version-script=client/libmodeld.map -Wl,--as-needed -o $@ $(PIC_OBJS) \
		$(shell pkg-config --libs $(CLIENT_PKGS) 2>/dev/null)
	ln -sf libmodeld.so $(BUILD)/libmodeld.so.0
# the prefix is the one given to make install, so the file is written there too
PC_SED = sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|0.1.0|' \
	-e 's|@LIBS_PRIVATE@|$(shell pkg-config --libs $(CLIENT_PKGS) 2>/dev/null)|'
$(BUILD)/modeld.pc: client/modeld.pc.in Makefile
	$(PC_SED) $< > $@
-include $(PIC_OBJS:.o=.d)
# --- end libmodeld.so ------------------------------------------------------

# --- meta/: license corpus embedded at build time (owner: meta) -----------
# meta/licenses/ID.txt -> $(BUILD)/gen/license_corpus.c (licdetect_corpus[]),
# compiled into libmdcore.a. See docs/licenses.md.
LIC_TEXTS = $(sort $(wildcard meta/licenses/*.txt))
$(BUILD)/gen/license_corpus.c: $(LIC_TEXTS) meta/licenses/embed.sh
	@mkdir -p $(dir $@)
	sh meta/licenses/embed.sh $(LIC_TEXTS) > $@.tmp && mv $@.tmp $@
$(BUILD)/obj/gen/license_corpus.o: $(BUILD)/gen/license_corpus.c meta/licdetect.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) -c -o $@ $<
$(BUILD)/libmdcore.a: $(BUILD)/obj/gen/license_corpus.o
# --- end meta --------------------------------------------------------------

$(BUILD)/modeld: $(call obj,daemon/main.c $(LAZY_SRCS)) $(BUILD)/libmdcore.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(MODELD_LDLIBS)
# the confined parser process modeld spawns per weight file (daemon/sandbox.h)
$(BUILD)/modeld-worker: $(call obj,daemon/worker_main.c) $(BUILD)/libmdcore.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/modelctl: $(call obj,$(CLI_SRCS)) $(BUILD)/libmodeld.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Unit tests link the whole core plus the client side (cmocka).
$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/libmdcore.a $(BUILD)/libmodeld.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

unit: $(UNIT_BINS)

# Foreground daemon on the embedded defaults (store and socket from the XDG
# directories, see modeld(8)).
run: all
	./$(BUILD)/modeld -f

test: test-deps all unit
	$(MAKE) --no-print-directory BUILD=build/asan CFLAGS="-O1 -g $(SAN_FLAGS)" \
		LDFLAGS="$(SAN_FLAGS)" unit build/asan/modeld build/asan/modelctl build/asan/modeld-worker
	./tests/run.sh

integration: all
	./tests/run.sh --integration-only

bench: all
	@echo "benchmarks: see bench/README.md"

fuzz: all
	./tests/fuzz/run.sh $(FUZZ_SECONDS)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)$(PREFIX)/lib/systemd/system \
		$(DESTDIR)$(PREFIX)/lib/sysusers.d $(DESTDIR)$(PREFIX)/lib/tmpfiles.d
	install -m 0755 $(BUILD)/modeld $(BUILD)/modelctl $(BUILD)/modeld-worker $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 docs/man/modelctl.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 0755 $(BUILD)/libmodeld.so $(DESTDIR)$(PREFIX)/lib/libmodeld.so.0
	ln -sf libmodeld.so.0 $(DESTDIR)$(PREFIX)/lib/libmodeld.so
	install -m 0644 $(BUILD)/libmodeld.a $(DESTDIR)$(PREFIX)/lib/
	install -m 0644 client/modeld.h $(DESTDIR)$(PREFIX)/include/
	$(PC_SED) client/modeld.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/modeld.pc
	chmod 0644 $(DESTDIR)$(PREFIX)/lib/pkgconfig/modeld.pc
	install -m 0644 docs/man/modeld.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	sed 's|@BINDIR@|$(PREFIX)/bin|g' systemd/modeld.service > \
		$(DESTDIR)$(PREFIX)/lib/systemd/system/modeld.service
	install -m 0644 systemd/modeld.socket $(DESTDIR)$(PREFIX)/lib/systemd/system/
	install -m 0644 systemd/modeld.sysusers $(DESTDIR)$(PREFIX)/lib/sysusers.d/modeld.conf
	install -m 0644 systemd/modeld.tmpfiles $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/modeld.conf

clean:
	rm -rf build

.SECONDARY:

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
