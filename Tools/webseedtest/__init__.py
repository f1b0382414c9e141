"""webseedtest: what webseed's Python test harnesses (Tools/tests, Tools/interop) and benches
(Tools/bench) share. Imported with Tools/ on PYTHONPATH; see README.md here."""
