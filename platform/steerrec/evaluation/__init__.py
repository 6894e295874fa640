"""Five-axis evaluation of run folders (Mender Sec. 3.5): `ranking` ranks and scores,
`report` evaluates runs over seeds and writes results.json, the table and the plot.
Importing this package imports nothing heavy."""
