"""The "EnTrust" dock widget: choose the modality layers and the parameters, run, cancel; open worklist cases."""
