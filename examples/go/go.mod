module example.invalid/headjack/examples/go

go 1.19
