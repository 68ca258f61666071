"""Statistics the tables read: paired intervals and bootstraps (`stats`) and the knowledge-free
floors of the signal report (`floors`). Plain numpy; no torch."""
