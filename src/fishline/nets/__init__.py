"""Network definitions and one loader that rebuilds any saved model kind."""
