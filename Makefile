# The two commands of the README; both install what they need on a fresh machine.
.PHONY: run test lint bench
run:
	scripts/run.sh
test:
	scripts/test.sh
lint:
	python3 -m uv run ruff check . && python3 -m uv run mypy shared/src shared/bus/src services/*/src deploy/local/src
