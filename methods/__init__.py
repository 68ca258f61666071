"""Knowledge-transfer methods under study (MASA) and the method registry."""
