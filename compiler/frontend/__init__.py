"""Floor 2, spec files to a frozen system model: loader -> document -> overlay -> schema pass -> scans -> resolve -> system model. Imports only `core`."""
