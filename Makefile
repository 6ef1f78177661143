# Pinned: newest honnef.co/go/tools release (go list -m -versions); works with Go 1.26.
STATICCHECK_VERSION := v0.8.2

# Extra arguments for test/example/bench, e.g. make test ARGS='-run TestFoo -v'
ARGS ?=

.PHONY: test example lint bench

test:
	bash scripts/test.sh $(ARGS)

example:
	bash scripts/example.sh $(ARGS)

lint:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt -l: files need formatting:"; echo "$$out"; exit 1; fi
	go vet ./...
	go run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

bench:
	bash scripts/bench.sh $(ARGS)
