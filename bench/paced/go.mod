module keystile.dev/bench/paced

go 1.24
