// tests in submodules and properties here
