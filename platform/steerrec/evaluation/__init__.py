"""Five-axis evaluation of run folders (Mender Sec. 3.5): `report` evaluates runs over seeds
(ranking and scoring with steerrec.train.ranking, the same code that validates during
training) and writes results.json, the table and the plot.
Importing this package imports nothing heavy."""
