module kdind.local/e2e/app

go 1.22
