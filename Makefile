# wallet-persist — build and test entry points. `make help` lists them.
#
# Every target sees node_modules/.bin (npm binaryen's wasm-opt, never Debian's) and ~/.cargo/bin
# (wasm-pack, wasm-bindgen at the Cargo.lock version) first on PATH. `make bootstrap` installs them.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.NOTPARALLEL:
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

CARGO_BIN := $(or $(CARGO_HOME),$(HOME)/.cargo)/bin
export PATH := $(CURDIR)/node_modules/.bin:$(CARGO_BIN):$(PATH)

PORT ?= 8080
CHROMEDRIVER ?= /usr/bin/chromedriver
TIMED := scripts/timed.sh
# Wall-clock start of this make run, for the total printed by `make test`.
T0 := $(shell date +%s)

.PHONY: help bootstrap pkg www-pkg demo test test-host test-browser test-e2e doc clean

help:
	@echo "make bootstrap     install missing tools (rust target, chromium, wasm-pack, wasm-bindgen-cli, npm dev deps)"
	@echo "make pkg           release build of the publishable package into pkg/ (no features)"
	@echo "make www-pkg       dev build with --features fault-injection into www/pkg/ (example page, JS e2e tests)"
	@echo "make demo          bootstrap, pkg, www-pkg, then serve the repo on http://127.0.0.1:$(PORT)/www/"
	@echo "make test          bootstrap, then test-host, doc, test-browser, test-e2e (fail fast, timed)"
	@echo "make test-host     cargo test (native)"
	@echo "make test-browser  wasm-bindgen-test in headless Chromium (webdriver.json at the crate root)"
	@echo "make test-e2e      pkg + www-pkg, then node --test tests/e2e/ (playwright-core; consumer app, README samples)"
	@echo "make doc           rustdoc for wasm32 (every public item documented, warnings are errors)"
	@echo "make clean         remove pkg/, www/pkg/, test-results/ (keeps target/)"

bootstrap:
	@$(TIMED) bootstrap scripts/bootstrap.sh

# --target web: one ES module that works with bundlers (Vite, webpack 5, Rollup: they see the
# `new URL('…_bg.wasm', import.meta.url)` and emit the .wasm) and in a plain <script type=module>.
# scripts/pkg-manifest.mjs adds the `exports` map wasm-pack does not write.
pkg:
	wasm-pack build --release --target web --out-dir pkg
	node scripts/pkg-manifest.mjs pkg

www-pkg:
	wasm-pack build --dev --target web --out-dir www/pkg -- --features fault-injection
	node scripts/pkg-manifest.mjs www/pkg

demo: bootstrap pkg www-pkg
	@echo "Serving $(CURDIR) — open http://127.0.0.1:$(PORT)/www/  (Ctrl-C to stop)"
	python3 -m http.server $(PORT) --bind 127.0.0.1 --directory .

test: bootstrap test-host doc test-browser test-e2e
	@echo "==> make test: all layers passed in $$(( $$(date +%s) - $(T0) )) s"

test-host: bootstrap
	@$(TIMED) test-host cargo test

# The API docs, as a wallet developer reads them: the wasm32 build (it has the JS surface, `js`).
# Missing docs and broken intra-doc links fail the build. Output: target/wasm32-unknown-unknown/doc/.
doc: bootstrap
	@$(TIMED) doc env RUSTDOCFLAGS="-D warnings -D missing-docs" \
	  cargo doc --no-deps --target wasm32-unknown-unknown --features fault-injection

test-browser: bootstrap
	@$(TIMED) test-browser env CHROMEDRIVER=$(CHROMEDRIVER) \
	  wasm-pack test --headless --chrome -- --features fault-injection

test-e2e: bootstrap
	@$(TIMED) test-e2e $(MAKE) _e2e

# The e2e layer proper (timed as a whole by test-e2e): both wasm builds, then the node tests.
# Test files are listed explicitly: `node --test DIR` recurses on Node 20, but Node >= 21 reads
# its arguments as globs. `node --test tests/e2e/` is equivalent here.
E2E_TESTS = $(shell find tests/e2e -name node_modules -prune -o -type f -name '*.test.mjs' -print | sort)
.PHONY: _e2e
_e2e: pkg www-pkg
	@test -n "$(E2E_TESTS)" || { echo "no tests/e2e/**/*.test.mjs found" >&2; exit 1; }
	node --test $(E2E_TESTS)

clean:
	rm -rf pkg www/pkg test-results
