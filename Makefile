# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TFLITE_STAMP := $(VENV)/.installed-tflite

.PHONY: demo test install system-deps clean

# torch first and exactly pinned: a looser requirement pulls gigabytes of CUDA wheels.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	touch $@

# The LiteRT converter is an optional extra (+1.1 GB): the tests need it, the demo does not.
$(TFLITE_STAMP): $(STAMP)
	$(PY) -m pip install -q -c constraints.txt -e '.[test,tflite]'
	touch $@

install: $(STAMP)

demo: install
	$(VENV)/bin/harness sweep suites/quickstart.yaml

# The tests start real sshd servers and a real headless Chromium: install them when root.
system-deps:
	@if command -v sshd >/dev/null && command -v chromium >/dev/null && command -v ip >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssh-server chromium iproute2; \
	else echo "note: not root; install openssh-server, chromium and iproute2 for the full test suite"; fi

test: install $(TFLITE_STAMP) system-deps
	$(VENV)/bin/pytest -q

clean:
	rm -rf $(VENV) results
