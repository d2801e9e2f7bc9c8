# bpfredir build. `make` builds everything incrementally; V=1 shows commands.
# Generated files live only under build/, native/build/ and dist/.
.DELETE_ON_ERROR:
.PHONY: all bpf native ts setup setup-test run test test-unit test-kernel test-kernels test-deploy image manifests bench install uninstall clean

Q := $(if $(V),,@)
BUILD := build
CLANG ?= clang
BPFTOOL ?= bpftool
ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

BPF_OBJ := $(BUILD)/bpf/bpfredir.bpf.o
ADDON := native/build/Release/bpfredir.node
TS_STAMP := dist/.built
NPM_STAMP := node_modules/.package-lock.json
# Build the addon against the local Node headers when npm is configured with them (offline machines).
NODEDIR := $(shell npm config get nodedir 2>/dev/null)
NODEDIR_FLAG := $(if $(filter-out undefined null,$(NODEDIR)),--nodedir=$(NODEDIR))

all: bpf native ts

bpf: $(BPF_OBJ)
native: $(ADDON)
ts: $(TS_STAMP)

$(BUILD)/vmlinux.h:
	@mkdir -p $(@D)
	@echo "  GEN     $@"
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@

$(BPF_OBJ): bpf/bpfredir.bpf.c bpf/bpfredir.h $(BUILD)/vmlinux.h
	@mkdir -p $(@D)
	@echo "  BPF     $@"
	$(Q)$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -I$(BUILD) -Ibpf -c $< -o $@

$(NPM_STAMP): package.json
	@echo "  NPM     install"
	$(Q)npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error
	@touch $@

# configure once (it wipes native/build), then incremental builds; binding.gyp
# lists native/*.cc when configured, so a new or removed source reconfigures.
NATIVE_SOURCES := $(BUILD)/native-sources.txt
$(shell mkdir -p $(BUILD); ls native/*.cc > $(NATIVE_SOURCES).new; \
  cmp -s $(NATIVE_SOURCES).new $(NATIVE_SOURCES) || cp $(NATIVE_SOURCES).new $(NATIVE_SOURCES); rm -f $(NATIVE_SOURCES).new)

native/build/Makefile: native/binding.gyp $(NATIVE_SOURCES) $(NPM_STAMP)
	@echo "  GYP     native/build"
	$(Q)cd native && ../node_modules/.bin/node-gyp configure --silent $(NODEDIR_FLAG) >/dev/null

$(ADDON): $(wildcard native/*.cc native/*.h) bpf/bpfredir.h native/build/Makefile
	@echo "  ADDON   $@"
	$(Q)cd native && ../node_modules/.bin/node-gyp build --silent $(NODEDIR_FLAG) -j 2 >/dev/null

$(TS_STAMP): $(shell find src test bench deploy -name '*.ts' 2>/dev/null) tsconfig.json $(NPM_STAMP)
	@echo "  TSC     dist/"
	$(Q)node_modules/.bin/tsc -p tsconfig.json
	@touch $@

# Installs the system packages (Debian/Ubuntu, as root) and npm dependencies: to build, and
# (setup-test) to run the tests too.
setup:
	$(Q)bash .ci/setup build

setup-test:
	$(Q)bash .ci/setup

run: setup all
	node dist/src/cli/main.js run --config deploy/example.yaml

test-unit: all
	node --test --test-reporter=spec dist/test/unit/

test-kernel: all
	node --test --test-concurrency=1 --test-reporter=spec dist/test/kernel/

# The kernel suite again, on Debian's Linux 6.1 booted under QEMU (docs/KERNELS.md). As root.
test-kernels: all
	bash test/vm/run-kernel.sh

# deploy/kubernetes/base/ from deploy/kubernetes/manifests.ts.
manifests: ts
	$(Q)node dist/deploy/kubernetes/render.js

# The container image, without a registry (deploy/container/build-offline.sh). As root.
image: setup all
	$(Q)bash deploy/container/build-offline.sh $(IMAGE)

# The deploy files under real systemd (systemd-nspawn) and as a container image. As root.
test-deploy: setup-test all
	node --test --test-concurrency=1 --test-reporter=spec dist/test/deploy/

test: setup-test all
	node --test --test-concurrency=1 --test-reporter=spec dist/test/unit/ dist/test/kernel/ dist/test/deploy/

bench: setup all
	node dist/bench/run.js $(BENCH_ARGS)

# make install: the run-time files under $(PREFIX)/lib/bpfredir, laid out as in this tree (the
# code finds package.json, the addon and the BPF object relative to itself), and a relative
# symlink $(PREFIX)/bin/bpfredir to the entry point, so a tree staged under DESTDIR works too.
PREFIX ?= /usr/local
INSTALL_LIB = $(DESTDIR)$(PREFIX)/lib/bpfredir
INSTALL_BIN = $(DESTDIR)$(PREFIX)/bin/bpfredir
# Production dependencies where npm put them; a package nested in another comes with it, and
# node-addon-api is only headers for building the addon.
RUNTIME_MODULES_CMD = npm ls --omit=dev --parseable --all | sed -n 's|^$(CURDIR)/||p' \
  | grep -v -e '^node_modules/node-addon-api$$' -e '^node_modules/.*/node_modules/'

install: setup all
	@echo "  INSTALL $(INSTALL_LIB)"
	$(Q)rm -rf $(INSTALL_LIB)
	$(Q)mkdir -p $(INSTALL_LIB) $(dir $(INSTALL_BIN))
	$(Q)modules=$$($(RUNTIME_MODULES_CMD)) && \
	  { echo package.json $(BPF_OBJ) $(ADDON) $$modules | tr ' ' '\n'; find dist/src -name '*.js'; } \
	  | tar -c --files-from=- | tar -x --no-same-owner --no-same-permissions -C $(INSTALL_LIB)
	$(Q)chmod 0755 $(INSTALL_LIB)/dist/src/cli/main.js
	$(Q)ln -sfr $(INSTALL_LIB)/dist/src/cli/main.js $(INSTALL_BIN)

uninstall:
	@echo "  UNINSTALL $(INSTALL_LIB)"
	$(Q)rm -rf $(INSTALL_LIB)
	$(Q)rm -f $(INSTALL_BIN)

clean:
	rm -rf $(BUILD) native/build dist
