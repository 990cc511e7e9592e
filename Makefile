# CTLens — two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: demo test bench lint venv clean package

venv: $(STAMP)

# Re-installs only when pyproject.toml changes; editable, with the dev tools.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ctlens view

# OpenGL tests (marker gl) run under Xvfb when there are any, then everything else offscreen
# (last, so the run's final summary is the full suite's).
test: $(STAMP)
	@if command -v xvfb-run >/dev/null; then \
	  xvfb-run -a $(BIN)/python -m pytest -q -m gl; rc=$$?; \
	  if [ $$rc -ne 0 ] && [ $$rc -ne 5 ]; then exit $$rc; fi; \
	else echo "xvfb-run not found: OpenGL tests skipped"; fi
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

bench: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m benchmarks

lint: $(STAMP)
	$(BIN)/ruff check core desktop tests benchmarks
	$(BIN)/mypy

# One-folder desktop bundle dist/ctlens (no Python needed to run it); see packaging/README.md.
package: $(STAMP)
	@$(BIN)/python -c 'import PyInstaller' 2>/dev/null || { \
	  echo "installing PyInstaller (the 'package' extra)..."; \
	  $(BIN)/python -m pip install --quiet -e '.[dev,package]'; }
	@mkdir -p build
	@echo "building dist/ctlens with PyInstaller: 4-10 minutes on two cores (log: build/package.log)..."
	@start=$$(date +%s); \
	$(BIN)/pyinstaller --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller \
	  packaging/ctlens.spec > build/package.log 2>&1 || { tail -n 30 build/package.log; exit 1; }; \
	echo "built in $$(( $$(date +%s) - start )) s: $(CURDIR)/dist/ctlens ($$(du -sh dist/ctlens | cut -f1))"; \
	echo "run it with dist/ctlens/ctlens view; install it with dist/ctlens/install.sh (Linux)"

clean:
	rm -rf build dist .pytest_cache
