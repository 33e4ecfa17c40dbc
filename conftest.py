pytest_plugins = ["objectvision_devstack.pytest_plugin"]
