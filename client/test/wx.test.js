'use strict'
// The client suites on a simulated wx object (see platforms.js), against the local stack.
require('./suite.js')('wx')
require('./ended.js')('wx')
require('./phone.js')('wx')
require('./account.js')('wx')
require('./admin.js')('wx')
