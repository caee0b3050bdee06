"""The health document and the verdicts it is made of."""
