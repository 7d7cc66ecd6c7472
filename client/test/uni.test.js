'use strict'
// The client suites on a simulated uni object (see platforms.js), against the local stack.
require('./suite.js')('uni')
require('./ended.js')('uni')
require('./phone.js')('uni')
require('./account.js')('uni')
require('./admin.js')('uni')
