"""``entrust benchmark``: EnTrust, its ablations and UNet baselines, each in a fresh process, one table.

:mod:`.methods` lists what is compared and how the models that are not bundled are trained;
:mod:`.baselines` are the MONAI UNet baselines; :mod:`.method_process` runs one method in its own
process; :mod:`.run` drives the whole benchmark, :mod:`.dependence` and :mod:`.report` add the
feature dependence and the table.
"""
