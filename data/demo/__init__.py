"""entrel's demo data (catalog.csv, query_log.csv, labels.csv), installed as package data `entrel.demo_data`."""
