# reviewpipe — every target installs what it needs into .venv first.
# REVIEW=<id> picks a review (queries/<id>.toml); LIVE=1 searches PubMed instead of the snapshot.

REVIEW ?= dry-needling-pf
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RP := $(BIN)/reviewpipe
STAMP := $(VENV)/.installed
SHARED ?= ../shared
LIVE_FLAG := $(if $(filter 1 yes true,$(LIVE)),--live,)

.DEFAULT_GOAL := help
.PHONY: help install review run search dedupe screen extract synthesize report update audit \
        test lint bench eval snapshot clean distclean

help: ## Show the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install reviewpipe with its test tools

review: $(STAMP) ## Run every stage of REVIEW (default: the bundled snapshot, offline)
	$(RP) run --review $(REVIEW) $(LIVE_FLAG)

run: review ## Same as review

search: $(STAMP) ## Stage 1: search (snapshot, or PubMed with LIVE=1) into a new run
	$(RP) search --review $(REVIEW) $(LIVE_FLAG)

dedupe: $(STAMP) ## Stage 2: cluster duplicates in the latest run
	$(RP) dedupe --review $(REVIEW)

screen: $(STAMP) ## Stage 3: screen clusters (include / exclude with reason / uncertain)
	$(RP) screen --review $(REVIEW)

extract: $(STAMP) ## Stage 4: extract outcomes of the included studies
	$(RP) extract --review $(REVIEW)

synthesize: $(STAMP) ## Stage 5: pool effects and draw forest plots
	$(RP) synthesize --review $(REVIEW)

report: $(STAMP) ## Stage 6: PRISMA counts and report.html
	$(RP) report --review $(REVIEW)

update: $(STAMP) ## Scheduled rerun: new PubMed records since the last search (needs NCBI_EMAIL)
	$(RP) update --review $(REVIEW)

audit: $(STAMP) ## Verify the decision log's hash chain and every run's artifact hashes
	$(RP) audit verify --review $(REVIEW)

test: $(STAMP) ## Run the test suite (needs no ../shared and no network)
	$(BIN)/python -m pytest

lint: $(STAMP) ## ruff over the code, tests and scripts
	$(BIN)/ruff check src tests scripts

bench: $(STAMP) ## Speed and memory benchmarks on ../shared data (says so when it is absent)
	$(BIN)/python scripts/bench.py --shared $(SHARED)

eval: $(STAMP) ## Quality against ../shared labels and benchmarks (says so when absent)
	$(BIN)/python scripts/eval.py --shared $(SHARED)

snapshot: $(STAMP) ## Rebuild data/snapshots/dry-needling-pf from ../shared/corpus
	$(RP) build-snapshot --corpus $(SHARED)/corpus/records.jsonl --out data/snapshots/dry-needling-pf

clean: ## Remove REVIEW's generated runs and store, and tool caches
	rm -rf data/reviews/$(REVIEW) .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +

distclean: clean ## clean, plus every review's state and the virtualenv
	rm -rf data/reviews $(VENV) src/*.egg-info
